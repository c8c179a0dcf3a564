"""The assembler: manifest loading, validation, plugins, compilation and the CLI.

Plugin authors use :data:`hookimpl` and :class:`Component`; tools use :func:`check`
and :func:`compile_app`. See docs/plugins.md and docs/manifest.md.
"""

from ._compile import compile_app as compile_app
from ._config import Duration as Duration
from ._config import config_schema as config_schema
from ._config import from_config as from_config
from ._config import option as option
from ._diagnostics import Diagnostic as Diagnostic
from ._diagnostics import Mark as Mark
from ._durations import DURATION as DURATION
from ._durations import duration as duration
from ._failures import FailureLog as FailureLog
from ._manifest import Manifest as Manifest
from ._plugins import Component as Component
from ._plugins import ConfigReport as ConfigReport
from ._plugins import MissingLibrary as MissingLibrary
from ._plugins import PluginInfo as PluginInfo
from ._plugins import Plugins as Plugins
from ._plugins import Report as Report
from ._plugins import hookimpl as hookimpl
from ._plugins import load_plugins as load_plugins
from ._plugins import missing_library as missing_library
from ._plugins import require_asyncio as require_asyncio
from ._plugins import require_library as require_library
from ._schema import composed_schema as composed_schema
from ._urls import mask_url as mask_url
from ._validate import Checked as Checked
from ._validate import check as check

__all__ = [
    "DURATION",
    "Checked",
    "Component",
    "ConfigReport",
    "Diagnostic",
    "Duration",
    "FailureLog",
    "Manifest",
    "Mark",
    "MissingLibrary",
    "PluginInfo",
    "Plugins",
    "Report",
    "check",
    "compile_app",
    "composed_schema",
    "config_schema",
    "duration",
    "from_config",
    "hookimpl",
    "load_plugins",
    "mask_url",
    "missing_library",
    "option",
    "require_asyncio",
    "require_library",
]
