"""The ``assemble`` command. Exit codes: 0 ok, 1 manifest errors or a failed task, 2 usage."""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click

import runner

from ._diagnostics import Diagnostic, render_github, render_json, render_text
from ._graph import render_graph
from ._manifest import Manifest, development_secrets, near
from ._new import NewError, new_plugin
from ._plugins import Plugins, debugging, load_plugins
from ._schema import composed_schema
from ._validate import Checked, check

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Fail(click.ClickException):
    """A user-facing failure: printed as ``error[code]: message`` with a hint, no traceback."""

    exit_code = EXIT_ERRORS

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.hint = code, hint

    def show(self, file: Any = None) -> None:
        click.echo(f"error[{self.code}]: {self.message}", err=True)
        if self.hint:
            click.echo(f"  hint: {self.hint}", err=True)


class _UsageFail(_Fail):
    """A usage mistake (bad --input, unknown task): exit 2."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins",
    "only",
    metavar="NAMES",
    envvar="ASSEMBLE_PLUGINS",
    help="Load only these plugins (comma-separated entry-point names).",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="ASSEMBLE_DEBUG",
    help="Show Python tracebacks for internal errors.",
)
@click.version_option(package_name="assemble", prog_name="assemble")
@click.pass_context
def cli(ctx: click.Context, only: str | None, debug: bool) -> None:
    """Turn a YAML manifest into a running app."""
    if debug:
        os.environ["ASSEMBLE_DEBUG"] = "1"  # plugin hooks re-raise for their traceback
    ctx.obj = {
        # `--plugins ""` loads none (the built-ins included): a bare core for debugging.
        "only": [n.strip() for n in only.split(",") if n.strip()] if only is not None else None,
        "debug": debug,
    }


def _plugins(ctx: click.Context) -> Plugins:
    if "plugins" not in ctx.obj:
        ctx.obj["plugins"] = load_plugins(ctx.obj["only"])
    return ctx.obj["plugins"]  # type: ignore[no-any-return]


def _print(diags: Sequence[Diagnostic], checked: Sequence[Checked], fmt: str) -> None:
    if fmt == "json":
        click.echo(render_json(diags))
    elif fmt == "github":
        if diags:
            click.echo(render_github(diags))
    else:
        sources: dict[str, list[str]] = {}
        for c in checked:
            if c.manifest is not None:
                sources.update(c.manifest.sources)
        text = render_text(diags, sources)
        if text:
            click.echo(text, err=True)


def _compiled(
    ctx: click.Context, file: str, overlays: Sequence[str] = (), roots: Sequence[str] = ()
) -> tuple[runner.Resource, Manifest]:
    """The compiled app and its manifest; exit 1 (diagnostics printed) on errors."""
    result = check(file, _plugins(ctx), overlays=overlays, roots=roots)
    if not result.ok or result.diagnostics:
        _print(result.diagnostics, [result], "text")
    if not result.ok:
        ctx.exit(EXIT_ERRORS)
    assert result.app is not None  # without errors, the app is compiled
    assert result.manifest is not None
    return result.app, result.manifest


def _warn_development_secrets(manifest: Manifest) -> None:
    """One line per secret-named config value the environment did not give (DESIGN §12):
    the app starts, but whoever deploys it sees which variable to set."""
    for d in development_secrets(manifest):
        click.echo(f"warning[{d.code}]: {d.message}; {d.hint}", err=True)


FORMAT = click.Choice(["text", "json", "github"])
OVERLAY = click.option(
    "--overlay",
    "overlays",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A YAML file laid over the manifest (maps merge, other values replace); "
    "repeat for several, applied in order.",
)
ROOT = click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="A folder includes may also come from, besides the manifest's own folder "
    "(shared fragments in a monorepo); repeatable. A manifest cannot widen it.",
)
BACKEND = click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="The async library to run on.",
)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True)
@click.option(
    "--no-import",
    "no_import",
    is_flag=True,
    help="Import none of the modules the manifests name (for untrusted changes): import "
    "paths are checked as text against the allow-list; signatures, cycles and compiling "
    "are not checked.",
)
@OVERLAY
@ROOT
@click.pass_context
def validate(
    ctx: click.Context,
    files: tuple[str, ...],
    fmt: str,
    no_import: bool,
    overlays: tuple[str, ...],
    roots: tuple[str, ...],
) -> None:
    """Report every problem of each manifest (exit 1 when there are errors)."""
    results = [
        check(f, _plugins(ctx), overlays=overlays, roots=roots, imports=not no_import)
        for f in files
    ]
    diags = [d for r in results for d in r.diagnostics]
    unique = list(dict.fromkeys(diags))  # plugin problems repeat for each file
    _print(unique, results, fmt)
    if no_import:
        click.echo(NOT_IMPORTED, err=True)
    if fmt == "text" and not unique:
        click.echo(f"ok: {len(files)} manifest(s) valid", err=True)
    ctx.exit(EXIT_ERRORS if any(not r.ok for r in results) else EXIT_OK)


NOT_IMPORTED = (
    "note: --no-import: no module was imported; import paths were checked as text against "
    "the allow-list, but not whether they exist, their signatures (ASM403-ASM406) or what "
    "compiling finds (ASM5xx)"
)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@BACKEND
@click.option(
    "--drain-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for in-flight work on shutdown (a resource such as an HTTP "
    "server may ask for longer).",
)
@OVERLAY
@ROOT
@click.pass_context
def run(
    ctx: click.Context,
    file: str,
    backend: str,
    drain_timeout: float,
    overlays: tuple[str, ...],
    roots: tuple[str, ...],
) -> None:
    """Validate, start and run the app until SIGINT/SIGTERM, then shut down gracefully."""
    app, manifest = _compiled(ctx, file, overlays, roots)
    _warn_development_secrets(manifest)

    def ready(rt: runner.Runtime) -> None:
        store = rt.store
        click.echo(
            f"assemble: {app.id} is running ({len(store.resources) - 1} resources, "
            f"{len(store.tasks)} tasks); stop with Ctrl+C or SIGTERM",
            err=True,
        )

    code = anyio.run(
        lambda: runner.serve(app, on_ready=ready, drain_timeout=drain_timeout), backend=backend
    )
    ctx.exit(code)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("task")
@click.option("--input", "input_json", metavar="JSON", help="The task's input, as JSON.")
@BACKEND
@OVERLAY
@ROOT
@click.pass_context
def call(
    ctx: click.Context,
    file: str,
    task: str,
    input_json: str | None,
    backend: str,
    overlays: tuple[str, ...],
    roots: tuple[str, ...],
) -> None:
    """Start the app, run TASK once, print its result as JSON on stdout, shut down."""
    value = _input(input_json, task)
    app, manifest = _compiled(ctx, file, overlays, roots)
    store = runner.Store.build(app)
    if task not in store.tasks:
        guess = near(task, list(store.tasks))
        raise _UsageFail(
            "ASM802",
            f"no task {task!r} in {app.id}",
            f"did you mean {guess!r}?"
            if guess
            else f"tasks: {', '.join(sorted(store.tasks)) or '(none)'}",
        )

    _warn_development_secrets(manifest)

    async def once() -> Any:
        async with runner.run(app) as rt:
            # The CLI is an edge like the HTTP server: the call gets a request id (logs
            # carry it); no headers, so auth comes from the input's token field.
            request = runner.Request(f"cli-{uuid.uuid4().hex[:12]}", transport="cli")
            with runner.current_request.provide(request):
                return await rt.run_task(task, value)

    try:
        result = anyio.run(once, backend=backend)
    except Exception as exc:
        if ctx.obj["debug"]:
            traceback.print_exc()
        runner.report(exc, sys.stderr)
        ctx.exit(EXIT_ERRORS)
    try:
        text = json.dumps(result, default=str, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:  # circular, NaN, a bad __str__
        raise _Fail(
            "ASM803",
            f"the result of {task!r} cannot be printed as JSON: {exc}",
            "return JSON-ready values (dicts, lists, strings, finite numbers); "
            "values without a JSON form are printed as their str()",
        ) from None
    click.echo(text)


def _input(text: str | None, task: str) -> Any:
    """``--input`` parsed, and checked at the boundary like an HTTP body (DESIGN §12)."""
    if text is None:
        return None
    try:
        # NaN and Infinity parse (as JSON's superset in Python does) so that the boundary
        # check below refuses them naming their field, as it does 1e400.
        value = json.loads(text, parse_constant=float)
    except json.JSONDecodeError as exc:
        raise _UsageFail(
            "ASM801",
            f"--input is not JSON: {exc}",
            'quote it for the shell: --input \'{"name": "Ada"}\'',
        ) from None
    except (ValueError, RecursionError) as exc:  # too many digits; nested too deeply
        too_long = isinstance(exc, ValueError)
        raise _UsageFail(
            "ASM801",
            "--input is not JSON Python can read: "
            + ("a number has too many digits" if too_long else "it is nested too deeply"),
            "send numbers of at most a few hundred digits"
            if too_long
            else "nest lists and objects at most a few hundred levels deep",
        ) from None
    try:
        runner.check_boundary(value, what="input", owner=task)
    except runner.errors.ValidationError as exc:
        details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        raise _UsageFail(
            "ASM804",
            f"--input is not valid: {details}",
            "send text a store can keep (no lone surrogate such as \\ud800, no NUL \\u0000) "
            "and finite numbers that fit in 64 bits (no NaN, Infinity or 1e400)",
        ) from None
    return value


@cli.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file.")
@click.pass_context
def schema(ctx: click.Context, output: str | None) -> None:
    """Print the JSON Schema of manifests, with every installed plugin's component configs."""
    plugins = _plugins(ctx)
    for d in plugins.problems:
        click.echo(f"warning[{d.code}]: {d.message}", err=True)
    text = json.dumps(composed_schema(plugins), indent=2)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        click.echo(text)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
@OVERLAY
@ROOT
@click.pass_context
def graph(
    ctx: click.Context, file: str, fmt: str, overlays: tuple[str, ...], roots: tuple[str, ...]
) -> None:
    """Print the app's dependency graph as Mermaid or DOT."""
    app, _ = _compiled(ctx, file, overlays, roots)
    click.echo(render_graph(runner.Store.build(app), fmt))


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def plugins(ctx: click.Context, fmt: str) -> None:
    """List the installed plugins and the component types they offer."""
    loaded = _plugins(ctx)
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    i.__dict__ | {"components": list(i.components), "provides": list(i.provides)}
                    for i in loaded.infos
                ],
                indent=2,
            )
        )
    elif not loaded.infos:
        click.echo("no plugins loaded (entry-point group `assemble`; see --plugins)")
    for info in loaded.infos if fmt == "text" else ():
        click.echo(f"{info.name}  ({info.distribution} {info.version})".rstrip())
        for name in info.components:
            comp = loaded.components[name]
            click.echo(
                f"  {name:<24} {comp.kind.replace('_', ' ')}"
                + (f"  {comp.description}" if comp.description else "")
            )
        for id in info.provides:
            click.echo(f"  {id:<24} registered in every app")
    for d in loaded.problems:
        click.echo(f"error[{d.code}]: {d.message}\n  hint: {d.hint}", err=True)
    ctx.exit(EXIT_ERRORS if loaded.problems else EXIT_OK)


@cli.group()
def new() -> None:
    """Write a new project from a template."""


@new.command("plugin")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to write the distribution in.",
)
def new_plugin_command(name: str, parent: Path) -> None:
    """Write the plugin distribution assemble-NAME: a typed component, tests, an example."""
    try:
        target = new_plugin(name, parent)
    except NewError as exc:
        raise _UsageFail("ASM806", exc.message, exc.hint) from None
    click.echo(f"wrote {target}")
    click.echo(f'next: cd {target} && pip install -e ".[test]" && pytest', err=True)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: no traceback ever reaches a user unless --debug asks for one."""
    debug = "--debug" in (argv if argv is not None else sys.argv) or debugging()
    try:
        code = cli.main(args=argv, prog_name="assemble", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error[ASM901]: interrupted", err=True)
        code = 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error[ASM900]: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo(
            "  hint: this is a bug in assemble or a plugin; run with --debug for the "
            "traceback and report it",
            err=True,
        )
        code = EXIT_ERRORS
    code = code if isinstance(code, int) else 0
    _leave_abandoned_threads(code)
    sys.exit(code)


def _leave_abandoned_threads(code: int) -> None:
    """Exit now if sync task threads a timeout abandoned are still running.

    The app is disposed by now; Python would otherwise wait at exit for threads nobody
    awaits (a hung sync task would hold the process after its caller timed out).
    """
    stuck = runner.abandoned_threads()
    if not stuck:
        return
    click.echo(
        f"note: not waiting for {stuck} worker thread(s) still running a sync task "
        "whose caller gave up (a timeout); exiting",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
