from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._definitions import Resource, Task

_SAME: Any = object()


class TaskCall:
    """What a task middleware sees: ``task``, ``input`` and ``await call.next(input)``."""

    __slots__ = ("_next", "input", "task")

    def __init__(self, task: Task, input: Any, next: Callable[[Any], Awaitable[Any]]) -> None:
        self.task, self.input, self._next = task, input, next

    def next(self, input: Any = _SAME) -> Awaitable[Any]:
        """Run the rest of the chain (inner middleware, then the task) with ``input``.

        Without an argument the current input is passed on.
        """
        return self._next(self.input if input is _SAME else input)


class ResourceCall:
    """What a resource middleware sees: ``resource``, ``config`` and ``await call.next(config)``."""

    __slots__ = ("_next", "config", "resource")

    def __init__(
        self, resource: Resource, config: Any, next: Callable[[Any], Awaitable[Any]]
    ) -> None:
        self.resource, self.config, self._next = resource, config, next

    def next(self, config: Any = _SAME) -> Awaitable[Any]:
        """Initialise the resource (through inner middleware) with ``config``."""
        return self._next(self.config if config is _SAME else config)


class EventEmission:
    """What a hook receives: ``id``, ``data`` and ``stop_propagation()``."""

    __slots__ = ("_stopped", "data", "id")

    def __init__(self, id: str, data: Any) -> None:
        self.id, self.data, self._stopped = id, data, False

    def stop_propagation(self) -> None:
        """Hooks after this one (by order) do not run for this emission."""
        self._stopped = True

    @property
    def propagation_stopped(self) -> bool:
        return self._stopped

    def __repr__(self) -> str:
        return f"<EventEmission {self.id!r} data={self.data!r}>"
