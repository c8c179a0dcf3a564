"""Which values from the environment are secrets, how diagnostics mask them, and the
warning for a secret-named config value that did not come from the environment.

An env value is a secret (``Manifest.secret_values``, scrubbed from every message)
when its variable is secret-named, when it lands under a secret-named key, or when it
is the password of a URL. Every env value is still redacted where it is shown at its
own place (``Manifest.is_secret``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import assembler
from assembler._manifest import development_secrets, url_credentials


@pytest.fixture(scope="module")
def plugins() -> assembler.Plugins:
    return assembler.load_plugins()


def checked(
    tmp_path: Path, plugins: assembler.Plugins, text: str, env: dict[str, str] | None = None
) -> assembler.Checked:
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return assembler.check(str(path), plugins, env=env or {})


def secrets_of(checked: assembler.Checked) -> set[str]:
    assert checked.manifest is not None
    return checked.manifest.secret_values


PLACES = """\
    assemble: 1
    id: app
    config:
      data_dir: ${env.DATA_DIR}
      database_url: ${env.DATABASE_URL}
      api: ${env.API_KEY}
      plain_pw: ${env.PLAIN}
    resources:
      store:
        init: nowhere:make
        config:
          port: ${env.PORT}
          admin: {password: "${env.ADMIN_VALUE}"}
          through: {password: "${config.plain_pw}"}
          tokens: ["${env.T1}"]
          url: "postgresql://u:${env.DB_PW}@h/db"
      tokens:
        init: nowhere:make
        config: {ttl: "${env.TTL}"}
    """


def test_which_env_values_are_secrets(tmp_path: Path, plugins: assembler.Plugins) -> None:
    env = {
        "DATA_DIR": "/srv/notes-data",
        "DATABASE_URL": "postgresql://app@db.internal/notes",
        "API_KEY": "k-1234567890",
        "PLAIN": "plain-value-1",
        "PORT": "8080",
        "ADMIN_VALUE": "admin-pw-1",
        "T1": "tok-1",
        "DB_PW": "db-pw-1",
        "TTL": "60",
    }
    result = checked(tmp_path, plugins, PLACES, env)
    assert secrets_of(result) == {"k-1234567890", "plain-value-1", "admin-pw-1", "tok-1", "db-pw-1"}
    manifest = result.manifest
    assert manifest is not None  # every env value is still redacted at its own place
    assert manifest.is_secret(("config", "data_dir"))
    assert manifest.is_secret(("resources", "store", "config", "port"))


def test_a_url_from_the_environment_gives_its_password_only(
    tmp_path: Path, plugins: assembler.Plugins
) -> None:
    env = {
        "DATA_DIR": ".",
        "DATABASE_URL": "postgresql://app:S3cret-pw@db/notes?sslpassword=ssl-pw-9&sslmode=require",
        "API_KEY": "k",
        "PLAIN": "p",
        "PORT": "1",
        "ADMIN_VALUE": "a",
        "T1": "t",
        "DB_PW": "d",
        "TTL": "1",
    }
    found = secrets_of(checked(tmp_path, plugins, PLACES, env))
    assert {"S3cret-pw", "ssl-pw-9"} <= found
    assert not any("db/notes" in s or s == "require" for s in found)


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("postgresql://u:PW@h/db", {"PW"}),
        ("redis://:p%40ss@cache:6379/0", {"p%40ss", "p@ss"}),
        ("postgresql://u@h/db", set()),
        ("https://h/x?token=t-1&page=2&X-Amz-Signature=s-2", {"t-1", "s-2"}),
        ("sqlite+aiosqlite:///./users.db", set()),
        ("http://h:not-a-port/", set()),
        ("not a url", set()),
    ],
)
def test_url_credentials(url: str, found: set[str]) -> None:
    assert url_credentials(url) == found


JWT = """\
    assemble: 1
    id: app
    config:
      jwt_secret: ${env.JWT_SECRET}
    middleware:
      jwt: {use: auth.jwt, config: {secret: "${config.jwt_secret}", algorithms: [HS256]}}
    """


@pytest.mark.parametrize("secret", ["short", "than", "bytes", "HS256"])
def test_a_short_or_common_word_secret_does_not_garble_messages(
    tmp_path: Path, plugins: assembler.Plugins, secret: str
) -> None:
    found = checked(tmp_path, plugins, JWT, {"JWT_SECRET": secret}).diagnostics
    assert [d.code for d in found] == ["ASM603"]
    message = found[0].message
    assert "<redacted>" not in message
    assert "the secret is shorter than 32 bytes (UTF-8), too short for" in message


def test_a_secret_is_masked_as_a_whole_token(tmp_path: Path, plugins: assembler.Plugins) -> None:
    text = """\
        assemble: 1
        id: app
        tasks:
          t:
            run: nowhere:t
            dependencies: {db: "${env.DB_TOKEN}", other: "${env.DB_NAME}"}
        """
    env = {"DB_TOKEN": "tok-9f8e7d6c", "DB_NAME": "notes-db-main"}
    messages = [d.message for d in checked(tmp_path, plugins, text, env).diagnostics]
    assert "unknown id '<redacted>'" in messages  # a secret-named variable
    assert "unknown id 'notes-db-main'" in messages  # a name: not a secret
    assert not any("tok-9f8e7d6c" in m for m in messages)


DEV = """\
    assemble: 1
    id: app
    config:
      jwt_secret: ${env.JWT_SECRET:-dev-only-secret-0123456789-abcdefgh}
      admin: {password: "${env.ADMIN_PASSWORD:-admin-password}"}
      hook: ${env.WEBHOOK_TOKEN:-}
    resources:
      store:
        init: nowhere:make
        config:
          api_key: literal-api-key-42
          admin: ${config.admin}
          token_field: token
          hook_token: ${config.hook}
          tokens: [literal-token-1]
    middleware:
      jwt: {use: auth.jwt, config: {secret: "${config.jwt_secret}", algorithms: [HS256]}}
    tasks:
      t:
        run: nowhere:t
        middleware: [{use: auth.jwt, config: {secret: literal-secret-0123456789-abcdefghij}}]
    """


def dev_lines(result: assembler.Checked) -> list[str]:
    assert result.manifest is not None
    found = development_secrets(result.manifest)
    assert all(d.code == "ASM805" and d.severity == "warning" for d in found)
    return [f"{d.message}; {d.hint}" for d in found]


def test_development_secrets_name_the_component_key_place_and_variable(
    tmp_path: Path, plugins: assembler.Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # places are relative to the working directory
    lines = dev_lines(checked(tmp_path, plugins, DEV))
    assert lines == [
        "resource 'store': config `api_key` is written in the manifest (app.yaml:11:16); "
        "read it from the environment (${env.NAME}) before deploying",
        "resource 'store': config `admin.password` is a development default (app.yaml:5:21); "
        "set ADMIN_PASSWORD before deploying",
        "resource 'store': config `tokens[0]` is written in the manifest (app.yaml:15:16); "
        "read it from the environment (${env.NAME}) before deploying",
        "middleware 'jwt': config `secret` is a development default (app.yaml:4:15); "
        "set JWT_SECRET before deploying",
        "middleware 'auth.jwt' of task 't': config `secret` is written in the manifest "
        "(app.yaml:21:51); read it from the environment (${env.NAME}) before deploying",
    ]
    for value in ("literal-api-key-42", "admin-password", "dev-only-secret", "literal-token-1"):
        assert not any(value in line for line in lines)


def test_no_development_secret_once_the_environment_gives_them(
    tmp_path: Path, plugins: assembler.Plugins
) -> None:
    text = DEV.replace("literal-api-key-42", "${env.API_KEY}")
    text = text.replace("[literal-token-1]", '["${env.T1}"]')
    text = text.replace("literal-secret-0123456789-abcdefghij", '"${config.jwt_secret}"')
    env = {"JWT_SECRET": "j" * 40, "ADMIN_PASSWORD": "a-strong-one", "API_KEY": "k", "T1": "t"}
    assert dev_lines(checked(tmp_path, plugins, text, env)) == []


def test_is_secret_sees_a_path_added_to_the_set_directly(
    tmp_path: Path, plugins: assembler.Plugins
) -> None:
    manifest = checked(tmp_path, plugins, JWT, {"JWT_SECRET": "s" * 40}).manifest
    assert manifest is not None
    assert manifest.is_secret(("middleware", "jwt", "config", "secret"))
    assert manifest.is_secret(("middleware", "jwt"))  # a secret lies inside
    assert not manifest.is_secret(("middleware", "jwt", "config", "algorithms"))
    manifest.secrets.add(("middleware", "jwt", "config", "algorithms"))  # as a plugin might
    assert manifest.is_secret(("middleware", "jwt", "config", "algorithms", 0))
