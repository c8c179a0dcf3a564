"""The assemble runtime: definitions, lifecycle, middleware, events and async contexts.

It knows nothing of YAML or plugins; the assembler compiles manifests into these
definitions. See docs/runtime.md.
"""

from . import errors as errors
from . import testing as testing
from ._boundary import boundary_errors as boundary_errors
from ._boundary import check_boundary as check_boundary
from ._calls import EventEmission as EventEmission
from ._calls import ResourceCall as ResourceCall
from ._calls import TaskCall as TaskCall
from ._definitions import AsyncContext as AsyncContext
from ._definitions import Definition as Definition
from ._definitions import Event as Event
from ._definitions import Hook as Hook
from ._definitions import MiddlewareUse as MiddlewareUse
from ._definitions import Provision as Provision
from ._definitions import Ref as Ref
from ._definitions import Resource as Resource
from ._definitions import ResourceMiddleware as ResourceMiddleware
from ._definitions import Tag as Tag
from ._definitions import TagUse as TagUse
from ._definitions import Task as Task
from ._definitions import TaskMiddleware as TaskMiddleware
from ._definitions import optional as optional
from ._graph import find_cycles as find_cycles
from ._graph import waves as waves
from ._main import main as main
from ._main import report as report
from ._main import serve as serve
from ._plan import Plan as Plan
from ._plan import plan as plan
from ._plan import signature_problem as signature_problem
from ._request import Request as Request
from ._request import current_request as current_request
from ._runtime import Runtime as Runtime
from ._runtime import current_resource as current_resource
from ._runtime import current_runtime as current_runtime
from ._runtime import run as run
from ._schema import Schema as Schema
from ._secrets import SecretValues as SecretValues
from ._secrets import is_secret_key as is_secret_key
from ._store import Store as Store
from ._store import Tagged as Tagged
from ._threads import abandoned_threads as abandoned_threads

__all__ = [
    "AsyncContext",
    "Definition",
    "Event",
    "EventEmission",
    "Hook",
    "MiddlewareUse",
    "Plan",
    "Provision",
    "Ref",
    "Request",
    "Resource",
    "ResourceCall",
    "ResourceMiddleware",
    "Runtime",
    "Schema",
    "SecretValues",
    "Store",
    "Tag",
    "TagUse",
    "Tagged",
    "Task",
    "TaskCall",
    "TaskMiddleware",
    "abandoned_threads",
    "boundary_errors",
    "check_boundary",
    "current_request",
    "current_resource",
    "current_runtime",
    "errors",
    "find_cycles",
    "is_secret_key",
    "main",
    "optional",
    "plan",
    "report",
    "run",
    "serve",
    "signature_problem",
    "testing",
    "waves",
]
