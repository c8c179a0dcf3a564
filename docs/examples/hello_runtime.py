"""The hello app on the runtime alone (what manifests/hello/app.yaml will compile to).

Run: python docs/examples/hello_runtime.py
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

import runner


async def make_greeter(config: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    greeter = {"greeting": config["greeting"], "greeted": []}
    yield greeter
    print(f"disposed greeter after greeting {len(greeter['greeted'])} people")


async def greet(input: dict[str, Any], greeter: dict[str, Any], greeted: Any) -> str:
    text = f"{greeter['greeting']}, {input['name']}!"
    greeter["greeted"].append(input["name"])
    await greeted({"name": input["name"]})
    return text


async def count(input: Any, greeter: dict[str, Any]) -> int:
    return len(greeter["greeted"])


def log_greeting(event: runner.EventEmission) -> None:
    print(f"[hook 1] greeted {event.data['name']}")


async def audit(event: runner.EventEmission) -> None:
    print(f"[hook 2] audit: {event.id} {event.data}")


greeter = runner.Resource(
    "greeter",
    init=make_greeter,
    config={"greeting": "Hello"},
    config_schema={"type": "object", "required": ["greeting"]},
)
greeted = runner.Event("greeted", payload_schema={"type": "object", "required": ["name"]})
app = runner.Resource(
    "hello",
    register=[
        greeter,
        greeted,
        runner.Task(
            "greet",
            run=greet,
            dependencies={"greeter": greeter, "greeted": greeted},
            input_schema={"type": "object", "required": ["name"]},
        ),
        runner.Task("count", run=count, dependencies={"greeter": greeter}),
        runner.Hook("log_greeting", on=greeted, order=1, run=log_greeting),
        runner.Hook("audit", on=greeted, order=2, run=audit),
    ],
)


async def main() -> None:
    async with runner.run(app) as rt:
        print(await rt.run_task("greet", {"name": "Ada"}))
        print(await rt.run_task("greet", {"name": "Grace"}))
        print("count:", await rt.run_task("count"))


if __name__ == "__main__":
    anyio.run(main)
