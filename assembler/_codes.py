"""Every diagnostic code of assemble itself, in one place: its code and what it means.

docs/manifest.md §16 documents exactly these (``tests/assembler/test_codes.py`` checks
both ways, and that every ``ASMnnn`` the assembler writes is here). Plugins use their
own codes (``<plugin>/check`` by default).
"""

from __future__ import annotations

from collections.abc import Mapping

#: code -> what it means (the "meaning" column of docs/manifest.md §16)
CODES: Mapping[str, str] = {
    "ASM001": "the manifest (or an overlay) cannot be read (missing, unreadable, not UTF-8)",
    "ASM002": (
        "a file (the manifest, an include at its `include:` entry, an overlay) is larger than 1 MiB"
    ),
    "ASM003": "YAML syntax error; an alias to an unknown anchor",
    "ASM004": "a `%YAML` directive other than 1.2",
    "ASM005": "an explicit YAML tag",
    "ASM006": "a duplicate key",
    "ASM007": "more than 100 aliases",
    "ASM008": "more than 100 000 nodes once aliases are expanded",
    "ASM009": "nesting deeper than 64 levels",
    "ASM010": "more than one YAML document",
    "ASM011": "a list, map or alias used as a map key",
    "ASM012": "an empty file",
    "ASM013": "`<<` merging something that is not a map",
    "ASM101": (
        "an unknown key (in the manifest, or in a config checked by your own `config_schema`)"
    ),
    "ASM102": "a value of the wrong type or shape; a manifest or fragment that is not a map",
    "ASM103": (
        "a missing required key; a task or middleware without `run`/`use`; a key a "
        "fragment may not hold"
    ),
    "ASM104": (
        "an invalid id or dependency key; any other schema rule a value breaks (`enum`, "
        "`minimum`, `minLength`, `const`...)"
    ),
    "ASM105": "an unsupported `assemble:` version",
    "ASM106": "more than one of `use`/`init`/`run`/`remote`; `dispose` without `init`",
    "ASM107": (
        "a `config_schema`/`input_schema`/`result_schema`/`payload_schema` that is not a "
        "valid JSON Schema, or whose `$ref` points nowhere"
    ),
    "ASM201": "`use:` names no installed component type",
    "ASM202": "a component type of the wrong kind for its place",
    "ASM203": "a reference to an unknown id, event, middleware or tag",
    "ASM204": ("an id used twice (sections, the app id, includes, config names across includes)"),
    "ASM205": (
        "an id that a plugin registers in every app (unless it is declared with `use:` of"
        " the plugin's type of the same name, §8)"
    ),
    "ASM206": "a reference to the wrong kind of thing",
    "ASM301": "`${env.X}` unset, without a default",
    "ASM302": "`${config.X}` names no config value",
    "ASM303": "an unreadable or unclosed `${...}`; a map or list inside text",
    "ASM304": "config values that refer to each other in a loop",
    "ASM401": (
        "not an import path; in a component config that takes import paths, a bare name "
        "that is neither a builtin class nor an import path"
    ),
    "ASM402": ("a module (or an object reached by an attribute walk) outside the allowed imports"),
    "ASM403": "the module cannot be imported, or its top-level code raised",
    "ASM404": "the module has no such attribute",
    "ASM405": "the object is not callable",
    "ASM406": "the callable's signature does not accept what will be passed",
    "ASM501": "a dependency cycle",
    "ASM502": (
        "another problem the runtime finds in the compiled definitions, at the component "
        "it names (or the top of the file when it names none)"
    ),
    "ASM601": "a plugin failed to import",
    "ASM602": "two plugins offer one component type, or register one id",
    "ASM603": (
        "a config that fails its plugin component's (or plugin tag's) schema, or the "
        "component's own check"
    ),
    "ASM604": (
        "a plugin raised an exception: in a hook, in a component's check, or while the "
        "app is compiled (a factory)"
    ),
    "ASM605": "`--plugins` / `ASSEMBLE_PLUGINS` names no installed plugin",
    "ASM606": "a plugin offers a component of an unknown kind",
    "ASM701": "an included file cannot be read (missing, a symlink loop, not UTF-8)",
    "ASM702": "an include cycle",
    "ASM703": (
        "an include that resolves (after symlinks) outside the manifest's folder and the "
        "`--root` folders (§11)"
    ),
    "ASM704": (
        "a file that is not a regular file: a FIFO, a device, a directory, a socket (an "
        "include, the manifest, an overlay)"
    ),
    "ASM705": "an include not named `*.yaml` or `*.yml` (after symlinks)",
    "ASM706": "the manifest, its includes and overlays together exceed 4 MiB, or 256 files",
    "ASM801": "`assemble call --input` is not JSON (exit 2)",
    "ASM802": "`assemble call` names no task of the app (exit 2)",
    "ASM803": "`assemble call`: the task's result has no JSON form (circular, NaN) (exit 1)",
    "ASM804": (
        "`assemble call --input` holds what no input may: a lone surrogate, a NUL "
        "character, NaN or ±infinity (also `1e400`), an integer outside 64 bits (exit 2; "
        "the fields named)"
    ),
    "ASM805": (
        "a warning of `run` and `call`: a secret-named config key holds a literal or a "
        "development default (§13.1)"
    ),
    "ASM806": ("`assemble new plugin`: not a plugin name, or the folder exists already (exit 2)"),
    "ASM900": (
        "an internal error (a bug in assemble); with `--debug` or `ASSEMBLE_DEBUG=1`, "
        "also an exception raised by a plugin, instead of `ASM604`"
    ),
    "ASM901": "interrupted with Ctrl+C (exit 130)",
}


def meaning(code: str) -> str:
    """What ``code`` means; ``""`` for a code that is not assemble's own."""
    return CODES.get(code, "")
