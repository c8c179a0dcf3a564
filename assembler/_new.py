"""``assemble new plugin NAME``: a plugin distribution that installs, passes its own
tests and shows in ``assemble plugins`` as written (docs/plugins.md §11)."""

from __future__ import annotations

import re
from pathlib import Path

#: A plugin's name: the entry point, the prefix of its component types, and (with
#: ``assemble_``) its package. Lower case, so that the three agree.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class NewError(Exception):
    """The plugin cannot be written here (a bad name, or the folder exists)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def new_plugin(name: str, parent: Path) -> Path:
    """Write the distribution ``assemble-NAME`` under ``parent``; its folder."""
    if not NAME.match(name):
        raise NewError(
            f"{name!r} is not a plugin name",
            "a plugin name is lower case: a letter, then letters, digits or _ "
            "(at most 40), e.g. `greet`",
        )
    target = parent / f"assemble-{name.replace('_', '-')}"
    if target.exists():
        raise NewError(
            f"{target} exists already",
            "remove it, or write the plugin elsewhere with --dir",
        )
    for relative, text in _files(name).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target


def _files(name: str) -> dict[str, str]:
    package = f"assemble_{name}"
    values = {
        "name": name,
        "package": package,
        "dist": f"assemble-{name.replace('_', '-')}",
    }
    return {
        "pyproject.toml": _PYPROJECT.format(**values),
        "README.md": _README.format(**values),
        f"src/{package}/__init__.py": _PLUGIN.format(**values),
        "example/app.yaml": _EXAMPLE.format(**values),
        "example/example_tasks.py": _EXAMPLE_TASKS,
        f"tests/test_{name}.py": _TESTS.format(**values),
    }


_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "An assemble plugin: the `{name}.greeter` resource."
requires-python = ">=3.11"
dependencies = ["assemble"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The entry point makes it a plugin: group `assemble`, name = the plugin's name.
[project.entry-points.assemble]
{name} = "{package}"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""

_README = """\
# {dist}

An [assemble](https://pypi.org/project/assemble/) plugin offering `{name}.greeter`, a
resource that greets people. Rename it and make it yours: the component, its typed
config, its tests and an example app are all here.

```sh
pip install -e ".[test]"          # install it (the entry point makes it a plugin)
pytest                            # its own tests
assemble plugins                  # lists `{name}` and `{name}.greeter`
assemble call example/app.yaml greet --input '{{"name": "Ada"}}'
```

- `src/{package}/__init__.py`: the component, its config as one class
  (`assembler.option`: schema, defaults and the typed object in one place).
- `tests/test_{name}.py`: the plugin loads, the example validates, the example runs.
- `example/`: an app that uses it.
"""

_PLUGIN = '''\
"""The `{name}` assemble plugin: the `{name}.greeter` resource."""

from __future__ import annotations

from dataclasses import dataclass

import assembler


@dataclass(frozen=True)
class GreeterConfig:
    """`{name}.greeter`'s config: its JSON Schema, defaults and typed object."""

    greeting: str = assembler.option("hello", doc="the word each greeting starts with")
    punctuation: str = assembler.option("", doc="added at the end", maxLength=3)


class Greeter:
    """What a task that depends on a `{name}.greeter` resource receives."""

    def __init__(self, config: GreeterConfig) -> None:
        self.config = config

    def greet(self, name: str) -> str:
        return f"{{self.config.greeting}}, {{name}}{{self.config.punctuation}}"


def make_greeter(config: GreeterConfig) -> Greeter:
    return Greeter(config)


@assembler.hookimpl
def assemble_components() -> list[assembler.Component]:
    return [
        assembler.Component(
            name="{name}.greeter",
            kind="resource",
            config=GreeterConfig,
            init=make_greeter,
            description="greets people",
        )
    ]
'''

_EXAMPLE = """\
assemble: 1
id: {name}_example
python_path: ["."]
resources:
  greeter:
    use: {name}.greeter
    config: {{greeting: hello, punctuation: "!"}}
tasks:
  greet:
    run: example_tasks:greet
    dependencies: {{greeter: greeter}}
    input_schema:
      type: object
      required: [name]
      properties: {{name: {{type: string, minLength: 1}}}}
"""

_EXAMPLE_TASKS = """\
def greet(input, greeter):
    return greeter.greet(input["name"])
"""

_TESTS = '''\
"""The plugin as users meet it: installed, loaded by name, used from a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

import assembler
import runner

EXAMPLE = Path(__file__).resolve().parents[1] / "example" / "app.yaml"


def test_the_plugin_loads_and_offers_its_component() -> None:
    loaded = assembler.load_plugins(only=["{name}"])
    assert not loaded.problems, loaded.problems
    greeter = loaded.components["{name}.greeter"]
    assert greeter.kind == "resource"
    assert greeter.config_schema["properties"]["greeting"]["default"] == "hello"


def test_the_example_validates() -> None:
    checked = assembler.check(str(EXAMPLE), assembler.load_plugins())
    assert checked.ok, [d.message for d in checked.diagnostics]


def test_a_bad_config_is_reported_at_its_place(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(EXAMPLE.read_text().replace('punctuation: "!"', 'punctuation: "!!!!"'))
    (tmp_path / "example_tasks.py").write_text(
        (EXAMPLE.parent / "example_tasks.py").read_text()
    )
    checked = assembler.check(str(app), assembler.load_plugins())
    assert [d.code for d in checked.diagnostics] == ["ASM603"]


def test_the_example_runs() -> None:
    checked = assembler.check(str(EXAMPLE), assembler.load_plugins())
    assert checked.app is not None

    async def main() -> Any:
        async with runner.run(checked.app) as rt:
            return await rt.run_task("greet", {{"name": "Ada"}})

    assert anyio.run(main) == "hello, Ada!"
'''
