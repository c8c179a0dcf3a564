"""Secret names and values: masked whole, never inside a word."""

from __future__ import annotations

import pytest

import runner
from runner._secrets import findable_in_text


@pytest.mark.parametrize(
    "key", ["password", "ADMIN_PASSWORD", "passwd", "jwt_secret", "api-key", "x_auth", "Cookie"]
)
def test_secret_names(key: str) -> None:
    assert runner.is_secret_key(key)


@pytest.mark.parametrize("key", ["name", "author", "authority", "email", "id", 3, None])
def test_other_names(key: object) -> None:
    assert not runner.is_secret_key(key)


def test_a_value_is_masked_as_a_whole_token_never_inside_a_word() -> None:
    secrets = runner.SecretValues(["s3cr3t-value-9", "hunter2hunter2"])
    assert secrets.sub("token=s3cr3t-value-9;", "***") == "token=***;"
    assert secrets.sub("xs3cr3t-value-9", "***") == "xs3cr3t-value-9"
    assert secrets.sub("hunter2hunter2x and hunter2hunter2", "***") == "hunter2hunter2x and ***"
    assert secrets.sub("s3cr3t-value-9", "***") == "***"


def test_short_and_plain_word_secrets_are_masked_only_as_whole_values() -> None:
    secrets = runner.SecretValues(["short", "password", "Administrator", "required"])
    message = "the secret is shorter than 32 bytes (UTF-8), too short for HS256"
    assert secrets.sub(message, "<redacted>") == message
    assert secrets.sub("password: is required", "***") == "password: is required"
    assert secrets.sub("short", "***") == "***"
    assert secrets.sub("required", "***") == "***"


@pytest.mark.parametrize(
    ("value", "findable"),
    [
        ("short", False),
        ("password", False),
        ("PASSWORD", False),
        ("Password", False),
        ("CorrectHorse", True),
        ("hunter2hunter2", True),
        ("dev-only-jwt-secret-change-me-0123456789", True),
        ("correct horse battery staple", True),
    ],
)
def test_which_values_are_looked_for_inside_text(value: str, findable: bool) -> None:
    assert findable_in_text(value) is findable


def test_no_values_means_nothing_changes() -> None:
    secrets = runner.SecretValues([""])
    assert not secrets
    assert secrets.sub("anything", "***") == "anything"
