"""``assembler.mask_url``: every URL shown without its password, token or credentials."""

from __future__ import annotations

import pytest

import assembler
from assembler._urls import UNPARSABLE


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # the password of the userinfo, percent-escapes and all
        (
            "postgresql+asyncpg://u:p%40ss@h:5432/db?sslpassword=x&application_name=y",
            "postgresql+asyncpg://u:***@h:5432/db?sslpassword=***&application_name=y",
        ),
        ("redis://:pw@h:6379/0?password=pw2", "redis://:***@h:6379/0?password=***"),
        ("mongodb://u:p@h1,h2/db?authSource=admin", "mongodb://u:***@h1,h2/db?authSource=admin"),
        ("mongodb+srv://u:p@cluster0.example.net/", "mongodb+srv://u:***@cluster0.example.net/"),
        # IPv6 hosts (with a zone) keep their brackets and ports
        ("postgresql://u:p@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("http://[fe80::1%25eth0]:8080/x", "http://[fe80::1%25eth0]:8080/x"),
        ("redis://[2001:db8::7]:6379/0?password=x", "redis://[2001:db8::7]:6379/0?password=***"),
        # a user with no password (or an empty one) is a token or an API key: all of it
        ("nats://s3cr3t-token@h:4222", "nats://***@h:4222"),
        ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("https://sk_live_abc:@api.stripe.com/v1", "https://***@api.stripe.com/v1"),
        ("redis://s3cr3t@cache:6379/0", "redis://***@cache:6379/0"),
        # ... but where the drivers read it as a user name, it is shown
        ("postgresql+asyncpg://app@db:5432/app", "postgresql+asyncpg://app@db:5432/app"),
        (
            "mongodb+srv://reader@cluster0.example.net/",
            "mongodb+srv://reader@cluster0.example.net/",
        ),
        ("amqp://guest@mq:5672/", "amqp://guest@mq:5672/"),
        ("postgres://app:@db/app", "postgres://***@db/app"),
        # a server list: each server on its own; spaces and commas as written
        ("nats://a:1,nats://u:p@b:2", "nats://a:1,nats://u:***@b:2"),
        ("nats://u:p,w@h1:1, tls://t@h2:2", "nats://u:***@h1:1, tls://***@h2:2"),
        # passwords holding `@`, `/`, `?` or `#` unescaped: to the last `@`
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p/ss@h/db", "postgresql://u:***@h/db"),
        ("https://u:p?x#y@h/?q=1", "https://u:***@h/?q=1"),
        ("nats://to?ken@h:1", "nats://***@h:1"),
        # credentials in the query and the fragment
        (
            "https://h/x?token=t&api_key=k&key=k2&page=2",
            "https://h/x?token=***&api_key=***&key=***&page=2",
        ),
        ("https://h/x?access_token=a&secret=s", "https://h/x?access_token=***&secret=***"),
        (
            "https://h/x?X-Amz-Signature=s&sig=s2&X-Amz-Date=d",
            "https://h/x?X-Amz-Signature=***&sig=***&X-Amz-Date=d",
        ),
        ("https://h/x?pass%77ord=p&Password=P", "https://h/x?pass%77ord=***&Password=***"),
        ("https://h/cb#access_token=a&state=s", "https://h/cb#access_token=***&state=s"),
        ("https://h/x?q=1#token=t", "https://h/x?q=1#token=***"),
        ("https://h/x?password=&flag", "https://h/x?password=&flag"),
        # nothing secret: shown exactly as written
        ("https://registry.npmjs.org/@types/node", "https://registry.npmjs.org/@types/node"),
        ("https://h/?email=ann@example.com", "https://h/?email=ann@example.com"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("redis+unix:///tmp/r.sock?db=0&password=x", "redis+unix:///tmp/r.sock?db=0&password=***"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("nats://h:4222?authSource=x&monkey=1", "nats://h:4222?authSource=x&monkey=1"),
    ],
)
def test_secrets_in_urls_are_masked_and_the_rest_is_kept(url: str, shown: str) -> None:
    assert assembler.mask_url(url) == shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "u:p@h",  # no scheme
        "host=db user=app password=x",  # a keyword DSN
        "redis://u:pw/0",  # `u:pw` is no host: a password, the host forgotten
        "redis://localhost:port",
        "http://h/x\n?token=y",  # a control character
    ],
)
def test_what_cannot_be_read_as_a_url_is_never_shown(text: str) -> None:
    assert assembler.mask_url(text) == UNPARSABLE


def test_the_password_never_survives_any_placement() -> None:
    for password in ("s3cr3t", "p@ss", "p/ss", "p?ss", "p#ss", "p,ss", "p:ss", "p%2Fss"):
        for url in (
            f"postgresql://app:{password}@db:5432/app",
            f"redis://:{password}@cache",
            f"nats://a:1,nats://app:{password}@b:2",
            f"https://h/x?password={password}",
        ):
            masked = assembler.mask_url(url)
            assert password not in masked and "***" in masked, (url, masked)
