"""Built-in plugin ``mongo``: the ``mongo.client`` resource (a pymongo ``AsyncDatabase``).

See docs/plugins/mongo.client.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import assembler

from ._client import MongoClientError, components

__all__ = ["MongoClientError"]


@assembler.hookimpl
def assemble_components() -> Sequence[Any]:
    return components()
