"""``auth.jwt`` and ``auth.rbac`` as users run them: manifests through the assembler.

Tokens are real PyJWT tokens; RSA keys are generated here with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import runner
from assemble_auth import Principal, auth
from assemble_auth._jwt import TokenRejected, make_jwt, verifier
from assemble_auth._jwt import problems as jwt_config_problems
from runner.errors import Forbidden, Unauthorized

from ._apps import app, check, problems, write

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-" + "k" * 40  # 47 bytes: fine for HS256
AUDIENCE, ISSUER = "users-api", "https://issuer.example"

TASKS = """
    import anyio

    calls = []

    def whoami(input, auth):
        p = auth.use()
        calls.append(input)
        return {"sub": p.subject, "roles": list(p.roles), "input": input}

    async def whoami_async(input, auth):
        await anyio.sleep(0.01)  # let concurrent calls interleave
        p = auth.use()
        return {"sub": p.subject, "aud": p.claims.get("aud"), "input": input}

    def admin_only(input, auth):
        return "admin " + auth.use().subject

    def boom(input, auth):
        raise LookupError("the task's own error, as " + auth.use().subject)
"""

RS_APP = """
    assemble: 1
    id: rs_app
    middleware:
      jwt:
        use: auth.jwt
        config:
          public_key: ${env.JWT_PUBLIC_KEY}
          algorithms: [RS256]
          audience: users-api
          issuer: https://issuer.example
          leeway: 10s
    tasks:
      whoami:
        run: auth_tasks:whoami
        dependencies: {auth: auth}
        middleware: [jwt]
      whoami_async:
        run: auth_tasks:whoami_async
        dependencies: {auth: auth}
        middleware: [jwt]
"""

HS_APP = """
    assemble: 1
    id: hs_app
    middleware:
      jwt: {use: auth.jwt, config: {secret: "${env.JWT_SECRET}", algorithms: [HS256]}}
      admins: {use: auth.rbac, config: {allowed_roles: [admin, root]}}
    tasks:
      whoami:
        run: auth_tasks:whoami
        dependencies: {auth: auth}
        middleware: [jwt]
      whoami_async:
        run: auth_tasks:whoami_async
        dependencies: {auth: auth}
        middleware: [jwt]
      whoami_field:
        run: auth_tasks:whoami
        dependencies: {auth: auth}
        middleware:
          - use: auth.jwt
            config:
              secret: ${env.JWT_SECRET}
              algorithms: [HS256]
              token_field: access_token
              roles_claim: groups
      admin_only:
        run: auth_tasks:admin_only
        dependencies: {auth: auth}
        middleware: [jwt, admins]
      boom:
        run: auth_tasks:boom
        dependencies: {auth: auth}
        middleware: [jwt]
      rbac_without_jwt:
        run: auth_tasks:admin_only
        dependencies: {auth: auth}
        middleware: [admins]
      whoami_http_input:
        run: auth_tasks:whoami
        dependencies: {auth: auth}
        middleware:
          - use: auth.jwt
            config:
              secret: ${env.JWT_SECRET}
              algorithms: [HS256]
              token_from_http_input: true
"""


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def small_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any) -> str:
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "ada",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 300,
        "roles": ["admin"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs_token(key: Any, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256")


def hs_token(**overrides: Any) -> str:
    """An HS256 token; no `aud` and `iss` unless given (HS_APP checks neither)."""
    return jwt.encode(claims(**{"aud": None, "iss": None, **overrides}), SECRET, algorithm="HS256")


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())


def bearer(token: str) -> runner.Request:
    return runner.Request("req-1", {"authorization": f"Bearer {token}"}, "http")


def rs_app(tmp_path: Path, key: Any) -> runner.Resource:
    return app(tmp_path, RS_APP, env={"JWT_PUBLIC_KEY": public_pem(key)}, auth_tasks=TASKS)


def hs_app(tmp_path: Path) -> runner.Resource:
    return app(tmp_path, HS_APP, env={"JWT_SECRET": SECRET}, auth_tasks=TASKS)


async def outcome(rt: runner.Runtime, task: str, input: Any, request: Any = None) -> Any:
    """The task's result, or the error it raised."""
    try:
        if request is None:
            return await rt.run_task(task, input)
        with runner.current_request.provide(request):
            return await rt.run_task(task, input)
    except runner.errors.RunnerError as exc:
        return exc


# -- valid tokens ------------------------------------------------------------------


async def test_a_bearer_header_authenticates_and_the_task_reads_the_principal(
    tmp_path: Path, rsa_key: Any
) -> None:
    token = rs_token(rsa_key, sub="ada", roles=["admin", "ops"])
    async with runner.run(rs_app(tmp_path, rsa_key)) as rt:
        with runner.current_request.provide(bearer(token)):
            got = await rt.run_task("whoami", {"id": 7})
            got_async = await rt.run_task("whoami_async", {"id": 8})
        assert auth.try_use() is None  # nothing leaks out of the call
    assert got == {"sub": "ada", "roles": ["admin", "ops"], "input": {"id": 7}}
    assert got_async == {"sub": "ada", "aud": AUDIENCE, "input": {"id": 8}}


async def test_a_token_in_the_input_authenticates_and_is_removed_from_it(
    tmp_path: Path, rsa_key: Any
) -> None:
    token = rs_token(rsa_key, sub="bob", roles=[])
    sent = {"token": token, "id": 1}
    async with runner.run(rs_app(tmp_path, rsa_key)) as rt:
        got = await rt.run_task("whoami", sent)
    assert got == {"sub": "bob", "roles": [], "input": {"id": 1}}
    assert sent == {"token": token, "id": 1}  # the task got a copy; the caller's dict is intact


async def test_token_field_and_roles_claim_are_configurable(tmp_path: Path) -> None:
    token = hs_token(sub="cy", roles=None, groups=["ops"])
    async with runner.run(hs_app(tmp_path)) as rt:
        got = await rt.run_task("whoami_field", {"access_token": token, "q": "x"})
        # the default field name is not special for this use: no token -> 401
        missing = await outcome(rt, "whoami_field", {"token": token})
        # no `audience` configured: a token meant for some audience is refused
        with_aud = await outcome(rt, "whoami", {"token": hs_token(aud="users-api")})
    assert got == {"sub": "cy", "roles": ["ops"], "input": {"q": "x"}}
    assert isinstance(missing, Unauthorized)
    assert isinstance(with_aud, Unauthorized)
    assert isinstance(with_aud.__cause__, jwt.InvalidAudienceError)


async def test_over_http_a_token_in_the_input_is_refused_unless_configured(
    tmp_path: Path,
) -> None:
    """A query string ends up in proxy and access logs: over HTTP the token comes from the
    Authorization header only (the input's token is still removed, never seen by the
    task or its logs), unless `token_from_http_input: true`."""
    token = hs_token(sub="q")
    http = runner.Request("r", {}, "http")
    async with runner.run(hs_app(tmp_path)) as rt:
        refused = await outcome(rt, "whoami", {"token": token, "q": 1}, http)
        for transport in ("cli", "tunnel", "nats", ""):
            elsewhere = runner.Request("r", {}, transport)
            assert (await outcome(rt, "whoami", {"token": token}, elsewhere))["sub"] == "q"
        allowed = await outcome(rt, "whoami_http_input", {"token": token, "q": 1}, http)
        header = await outcome(rt, "whoami", {"token": "ignored", "q": 1}, bearer(token))
    assert isinstance(refused, Unauthorized)
    assert "token_from_http_input" in str(refused.__cause__)
    assert allowed == {"sub": "q", "roles": ["admin"], "input": {"q": 1}}
    assert header == {"sub": "q", "roles": ["admin"], "input": {"q": 1}}


async def test_the_header_wins_and_an_input_token_is_removed_anyway(
    tmp_path: Path, rsa_key: Any
) -> None:
    header = rs_token(rsa_key, sub="from-header")
    async with runner.run(rs_app(tmp_path, rsa_key)) as rt:
        got = await outcome(rt, "whoami", {"token": "garbage", "id": 2}, bearer(header))
        # a non-Bearer Authorization header is not a token: the input's token is used
        basic = runner.Request("r", {"authorization": "Basic YWRhOnB3"})
        via_input = await outcome(rt, "whoami", {"token": rs_token(rsa_key, sub="in")}, basic)
        # the scheme is case-insensitive
        lower = runner.Request("r", {"authorization": f"bearer {rs_token(rsa_key, sub='lc')}"})
        lower_got = await outcome(rt, "whoami", None, lower)
    assert got == {"sub": "from-header", "roles": ["admin"], "input": {"id": 2}}
    assert via_input["sub"] == "in"
    assert lower_got["sub"] == "lc"


async def test_concurrent_calls_each_see_their_own_principal(tmp_path: Path) -> None:
    seen: dict[str, str] = {}
    async with runner.run(hs_app(tmp_path)) as rt:

        async def one(name: str) -> None:
            result = await rt.run_task("whoami_async", {"token": hs_token(sub=name)})
            seen[name] = result["sub"]

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, f"user{i}")
    assert seen == {f"user{i}": f"user{i}" for i in range(20)}


async def test_the_tasks_own_errors_pass_through_unchanged(tmp_path: Path) -> None:
    async with runner.run(hs_app(tmp_path)) as rt:
        with pytest.raises(LookupError, match="the task's own error, as ada"):
            await rt.run_task("boom", {"token": hs_token()})


# -- every invalid token is the same 401 --------------------------------------------


def attack_vectors(key: Any, other: Any) -> dict[str, Any]:
    """``name -> input`` (a token in the input, or None for no token at all)."""
    now = int(time.time())
    pem = public_pem(key).encode()
    # The classic key confusion: HS256 signed with the RS256 public key as HMAC secret.
    head_and_body = unsigned({"alg": "HS256", "typ": "JWT"}, claims())
    confused = (
        head_and_body + "." + b64(hmac.new(pem, head_and_body.encode(), hashlib.sha256).digest())
    )
    valid = rs_token(key)
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims()) + ".",
        "alg None": unsigned({"alg": "None", "typ": "JWT"}, claims()) + ".",
        "HS256 with the public key as secret": confused,
        "expired beyond the leeway": rs_token(key, exp=now - 10 - 3),
        "no exp": rs_token(key, exp=None),
        "no sub": rs_token(key, sub=None),
        "empty sub": rs_token(key, sub=""),
        "sub not a string": rs_token(key, sub=42),
        "wrong audience": rs_token(key, aud="other-api"),
        "no audience": rs_token(key, aud=None),
        "wrong issuer": rs_token(key, iss="https://evil.example"),
        "nbf in the future": rs_token(key, nbf=now + 10 + 60),
        "iat in the future": rs_token(key, iat=now + 10 + 60),
        "signed by another key": rs_token(other),
        "algorithm not allowed (RS512)": jwt.encode(claims(), key, algorithm="RS512"),
        "truncated signature": valid[:-6],
        "tampered payload": valid.split(".")[0]
        + "."
        + b64(json.dumps(claims(sub="root")).encode())
        + "."
        + valid.split(".")[2],
        "roles not a list of strings": rs_token(key, roles=[1, 2]),
        "garbage": "not-a-jwt",
        "empty string": "",
        "token not a string": 12345,
        "missing token": None,
    }


async def test_every_bad_token_is_one_indistinguishable_401(
    tmp_path: Path, rsa_key: Any, other_rsa_key: Any
) -> None:
    vectors = attack_vectors(rsa_key, other_rsa_key)
    # The key-confusion token is well formed: a verifier that took the PEM as an HMAC
    # secret would accept it.
    confused = vectors["HS256 with the public key as secret"]
    signing_input, _, signature = confused.rpartition(".")
    expected_sig = hmac.new(public_pem(rsa_key).encode(), signing_input.encode(), hashlib.sha256)
    assert signature == b64(expected_sig.digest())
    assert jwt.get_unverified_header(confused)["alg"] == "HS256"

    results: dict[str, Any] = {}
    async with runner.run(rs_app(tmp_path, rsa_key)) as rt:
        for name, token in vectors.items():
            input = {"id": 1} if token is None else {"id": 1, "token": token}
            results[name] = await outcome(rt, "whoami", input)
        via_header = await outcome(rt, "whoami", None, bearer(vectors["alg none"]))
        # a valid token still passes: the vectors fail for their own reasons
        ok = await outcome(rt, "whoami", {"token": rs_token(rsa_key), "id": "ok"})
    assert ok["sub"] == "ada"

    reference = Unauthorized()
    not_401 = {n: r for n, r in results.items() if not isinstance(r, Unauthorized)}
    assert not_401 == {}
    assert isinstance(via_header, Unauthorized)
    for name, err in [*results.items(), ("via header", via_header)]:
        assert type(err) is Unauthorized, name
        assert (str(err), err.message, err.hint) == (
            str(reference),
            reference.message,
            reference.hint,
        ), name
        assert (err.code, err.http_status) == ("runner.unauthorized", 401), name
        assert err.__cause__ is not None, name  # the reason, kept for logs
    # ... and the reasons differ, so logs can tell them apart
    causes = {name: type(err.__cause__) for name, err in results.items()}
    assert causes["expired beyond the leeway"] is jwt.ExpiredSignatureError
    assert causes["wrong audience"] is jwt.InvalidAudienceError
    assert causes["wrong issuer"] is jwt.InvalidIssuerError
    assert causes["nbf in the future"] is jwt.ImmatureSignatureError
    assert causes["no exp"] is jwt.MissingRequiredClaimError
    assert causes["alg none"] is jwt.InvalidAlgorithmError
    assert causes["HS256 with the public key as secret"] is jwt.InvalidAlgorithmError
    assert causes["signed by another key"] is jwt.InvalidSignatureError
    assert causes["missing token"] is TokenRejected
    assert causes["roles not a list of strings"] is TokenRejected
    assert sys.modules["auth_tasks"].calls == [
        {"id": "ok"}
    ]  # only the valid token reached the task


async def test_the_leeway_applies_to_exp_at_its_boundary(tmp_path: Path, rsa_key: Any) -> None:
    # leeway 10s (RS_APP): expired 7s ago passes, 13s ago does not; HS_APP keeps the
    # default 30s: expired 20s ago passes, 40s ago does not. Margins of 3s+ absorb a slow CI.
    (tmp_path / "rs").mkdir()
    (tmp_path / "hs").mkdir()
    async with runner.run(rs_app(tmp_path / "rs", rsa_key)) as rt:
        now = int(time.time())
        inside = await outcome(rt, "whoami", {"token": rs_token(rsa_key, exp=now - 10 + 3)})
        outside = await outcome(rt, "whoami", {"token": rs_token(rsa_key, exp=now - 10 - 3)})
    async with runner.run(hs_app(tmp_path / "hs")) as rt:
        now = int(time.time())
        default_inside = await outcome(rt, "whoami", {"token": hs_token(exp=now - 20)})
        default_outside = await outcome(rt, "whoami", {"token": hs_token(exp=now - 40)})
    assert inside["sub"] == "ada"
    assert isinstance(outside, Unauthorized)
    assert isinstance(outside.__cause__, jwt.ExpiredSignatureError)
    assert default_inside["sub"] == "ada"
    assert isinstance(default_outside, Unauthorized)


# -- auth.rbac ---------------------------------------------------------------------


async def test_rbac_401_without_principal_403_without_role_passes_with_one(
    tmp_path: Path,
) -> None:
    async with runner.run(hs_app(tmp_path)) as rt:
        no_principal = await outcome(rt, "rbac_without_jwt", {"token": hs_token()})
        no_token = await outcome(rt, "admin_only", {})
        no_role = await outcome(rt, "admin_only", {"token": hs_token(roles=["user"])})
        no_roles = await outcome(rt, "admin_only", {"token": hs_token(roles=None)})
        admin = await outcome(rt, "admin_only", {"token": hs_token(sub="ada", roles=["admin"])})
        root = await outcome(rt, "admin_only", {"token": hs_token(sub="r", roles=["x", "root"])})
        one_string = await outcome(rt, "admin_only", {"token": hs_token(sub="s", roles="admin")})
    for err in (no_principal, no_token):
        assert isinstance(err, Unauthorized)
        assert (str(err), err.http_status) == (str(Unauthorized()), 401)
    for err in (no_role, no_roles):
        assert type(err) is Forbidden
        assert (str(err), err.code, err.http_status) == (
            str(Forbidden()),
            "runner.forbidden",
            403,
        )
    assert (admin, root, one_string) == ("admin ada", "admin r", "admin s")


async def test_rbac_in_python_reads_the_principal_directly() -> None:
    from assemble_auth._rbac import make_rbac

    run = make_rbac({"allowed_roles": ["admin"]})
    task = runner.Task("t", run=lambda input: input)

    async def nxt(input: Any) -> Any:
        return "ran"

    with auth.provide(Principal("ada", ("admin",))):
        assert await run(runner.TaskCall(task, None, nxt), {}) == "ran"
    with auth.provide(Principal("bob", ("user",))), pytest.raises(Forbidden):
        await run(runner.TaskCall(task, None, nxt), {})
    with pytest.raises(Unauthorized):
        await run(runner.TaskCall(task, None, nxt), {})


# -- config errors -----------------------------------------------------------------


def jwt_problems(tmp_path: Path, config: str, env: dict[str, str]) -> list[Any]:
    """Problems of one ``auth.jwt`` use whose config lines start on line 7."""
    manifest = "assemble: 1\nid: cfg\nmiddleware:\n  jwt:\n    use: auth.jwt\n    config:\n"
    return problems(tmp_path, manifest + config + "\n", env=env)


@pytest.mark.parametrize(
    ("config", "line", "col", "says"),
    [
        ("      algorithms: [none]\n      secret: x", 7, 20, "'none' is not one of"),
        ("      algorithms: []\n      secret: x", 7, 19, "should be non-empty"),
        ("      secret: ${env.JWT_SECRET}", 6, 5, "missing required key 'algorithms'"),
        (
            "      algorithms: [HS256, RS256]\n      secret: ${env.JWT_SECRET}",
            7,
            19,
            "algorithms mix HMAC (HS256) and asymmetric (RS256)",
        ),
        (
            "      algorithms: [HS256]\n      secret: ${env.SHORT}",
            8,
            15,
            "the secret is shorter than 32 bytes",
        ),
        (
            "      algorithms: [HS512]\n      secret: ${env.JWT_SECRET}",
            8,
            15,
            "the secret is shorter than 64 bytes (UTF-8), too short for HS512",
        ),
        (
            "      algorithms: [HS256]\n      secret: ${env.JWT_SECRET}\n"
            "      public_key: ${env.PEM}",
            9,
            19,
            "HS256 verifies with a shared `secret`, not a `public_key`",
        ),
        (
            "      algorithms: [RS256]\n      secret: ${env.JWT_SECRET}\n"
            "      public_key: ${env.PEM}",
            8,
            15,
            "RS256 verifies with a `public_key`, not a `secret`",
        ),
        ("      algorithms: [HS256]", 7, 19, "HS256 needs `secret`"),
        ("      algorithms: [ES256]", 7, 19, "ES256 needs `public_key`"),
        (
            "      algorithms: [RS256]\n      public_key: not a key",
            8,
            19,
            "public_key is not a PEM public key",
        ),
        (
            "      algorithms: [RS256]\n      public_key: ${env.PRIVATE}",
            8,
            19,
            "public_key holds a private key",
        ),
        (
            "      algorithms: [ES256]\n      public_key: ${env.PEM}",
            8,
            19,
            "ES256 cannot verify with this public_key (an RSA key of 2048 bits)",
        ),
        (
            "      algorithms: [RS256]\n      public_key: ${env.SMALL_PEM}",
            8,
            19,
            "the RSA public key is shorter than 2048 bits",
        ),
        (
            "      algorithms: [HS256]\n      secret: ${env.PEM}",
            8,
            15,
            "the secret is an asymmetric key or certificate",
        ),
        (
            "      algorithms: [HS256]\n      secret: ${env.JWT_SECRET}\n      leeway: soon",
            9,
            15,
            "'soon' does not match",
        ),
        (
            "      algorithms: [HS256]\n      secret: ${env.JWT_SECRET}\n      audiance: x",
            9,
            7,
            "unknown key 'audiance'",
        ),
    ],
    ids=[
        "none",
        "empty algorithms",
        "no algorithms",
        "HS256+RS256",
        "short secret",
        "HS512 short secret",
        "HS256 with public_key",
        "RS256 with secret",
        "HS256 without secret",
        "ES256 without public_key",
        "not PEM",
        "private key",
        "RSA key for ES256",
        "RSA 1024",
        "PEM as secret",
        "bad leeway",
        "unknown key",
    ],
)
def test_config_errors_are_asm603_at_their_key(
    tmp_path: Path, rsa_key: Any, small_rsa_key: Any, config: str, line: int, col: int, says: str
) -> None:
    small = small_rsa_key
    env = {
        "JWT_SECRET": SECRET,
        "SHORT": "sh0rt-but-s3cret",
        "PEM": public_pem(rsa_key),
        "PRIVATE": private_pem(rsa_key),
        "SMALL_PEM": public_pem(small),
    }
    found = jwt_problems(tmp_path, config, env)
    assert [(code, ln, c) for code, ln, c, _ in found] == [("ASM603", line, col)], found
    message = found[0][3]
    assert says in message
    assert "auth.jwt" in message
    for value in ("sh0rt-but-s3cret", SECRET):
        assert value not in message  # env-derived secrets are never echoed


def test_a_good_config_has_no_problems(tmp_path: Path, rsa_key: Any) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    env = {"JWT_SECRET": SECRET, "PEM": public_pem(rsa_key), "EC": public_pem(ec_key)}
    manifest = """
        assemble: 1
        id: fine
        middleware:
          hs: {use: auth.jwt, config: {secret: "${env.JWT_SECRET}", algorithms: [HS256]}}
          rs: {use: auth.jwt, config: {public_key: "${env.PEM}", algorithms: [RS256, PS256]}}
          es: {use: auth.jwt, config: {public_key: "${env.EC}", algorithms: [ES256]}}
          admins: {use: auth.rbac, config: {allowed_roles: [admin]}}
    """
    assert problems(tmp_path, manifest, env=env) == []


def test_the_secret_hint_says_how_to_make_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        assemble: 1
        id: cfg
        middleware:
          jwt: {use: auth.jwt, config: {secret: "${env.S}", algorithms: [HS256]}}
        """,
    )
    (d,) = check(path, {"S": "short"}).diagnostics
    assert (d.code, d.pointer) == ("ASM603", "/middleware/jwt/config/secret")
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in d.hint


@pytest.mark.parametrize(
    ("config", "line", "col", "says"),
    [
        ("{allowed_roles: []}", 4, 52, "should be non-empty"),
        ("{}", 4, 28, "missing required key 'allowed_roles'"),
        ("{allowed_roles: admin}", 4, 52, "expected an array"),
    ],
    ids=["empty", "missing", "not a list"],
)
def test_rbac_config_errors(tmp_path: Path, config: str, line: int, col: int, says: str) -> None:
    manifest = f"""
        assemble: 1
        id: cfg
        middleware:
          admins: {{use: auth.rbac, config: {config}}}
    """
    found = problems(tmp_path, manifest)
    assert [(code, ln, c) for code, ln, c, _ in found] == [("ASM603", line, col)], found
    assert says in found[0][3]


def test_the_factory_refuses_a_bad_config_without_echoing_the_secret() -> None:
    # Python users who build definitions by hand get the same checks as manifests.
    with pytest.raises(ValueError, match="the secret is shorter than 32 bytes") as info:
        make_jwt({"algorithms": ["HS256"], "secret": "tiny-secret"})
    assert "tiny-secret" not in str(info.value)
    with pytest.raises(ValueError, match="'none' is not an accepted algorithm"):
        make_jwt({"algorithms": ["none"], "secret": SECRET})
    with pytest.raises(ValueError, match="`algorithms` is required"):
        make_jwt({"secret": SECRET})


def test_the_key_is_parsed_once_when_the_middleware_is_built(rsa_key: Any) -> None:
    v = verifier({"algorithms": ["RS256"], "public_key": public_pem(rsa_key)})
    assert isinstance(v.key, rsa.RSAPublicKey)  # not the PEM text: no parsing per call
    assert v.leeway == 30.0
    assert v.options["require"] == ["exp", "sub"]


def test_without_pyjwt_the_plugin_loads_and_the_config_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PyJWT is an extra: importing the plugin must not need it (or every validate would
    # fail with ASM601 on machines without it).
    blocked = "import sys; sys.modules['jwt'] = None; import assemble_auth; print('ok')"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
    monkeypatch.setitem(sys.modules, "jwt", None)
    (p,) = jwt_config_problems({"algorithms": ["HS256"], "secret": SECRET})
    assert "needs PyJWT" in p.message
    assert "assemble[jwt]" in p.hint


def test_rbac_listed_before_jwt_is_reported_where_it_is_listed(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: order
        middleware:
          jwt:
            use: auth.jwt
            config: {secret: "0123456789abcdef0123456789abcdef", algorithms: [HS256]}
          admins: {use: auth.rbac, config: {allowed_roles: [admin]}}
        tasks:
          wrong: {run: order_mod:task, middleware: [admins, jwt]}
          right: {run: order_mod:task, middleware: [jwt, admins]}
          alone: {run: order_mod:task, middleware: [admins]}
        """,
        order_mod="def task(input):\n    return input\n",
    )
    assert [(c, line, col) for c, line, col, _ in found] == [("auth/rbac-before-jwt", 9, 45)]
    assert "task 'wrong': auth.rbac runs before auth.jwt" in found[0][3]


def test_a_cache_listed_before_jwt_is_reported(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        assemble: 1
        id: order
        middleware:
          jwt:
            use: auth.jwt
            config: {secret: "0123456789abcdef0123456789abcdef", algorithms: [HS256]}
        tasks:
          leaky: {run: order2_mod:task, middleware: [{use: cache.memory, config: {ttl: 1m}}, jwt]}
          fine: {run: order2_mod:task, middleware: [jwt, {use: cache.memory, config: {ttl: 1m}}]}
        """,
        order2_mod="def task(input):\n    return input\n",
    )
    assert [(c, line) for c, line, _, _ in found] == [("auth/cache-before-jwt", 8)]
    assert "served before the token is checked" in found[0][3]


def test_a_token_is_verified_once_then_served_from_its_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = verifier({"algorithms": ["HS256"], "secret": SECRET, "leeway": 0})
    calls = []
    real = v.decoder.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(v.decoder, "decode", counting)
    # exp is whole seconds: `int(time.time()) + 1` can be a millisecond away, and the
    # token must stay valid through the hits below even if the process stalls. At least
    # 0.5 s (at most 1.5 s) away:
    now = time.time()
    exp = math.ceil(now + 0.5)
    good = jwt.encode({"sub": "ann", "exp": exp, "iat": int(now)}, SECRET, algorithm="HS256")
    assert v.principal(good).subject == "ann"
    assert v.principal(good).subject == "ann"
    assert len(calls) == 1  # the second call was a hit: no signature check
    head, payload, _ = good.split(".")
    forged = f"{head}.{payload}.{'A' * 43}"  # same claims, another signature: no hit
    with pytest.raises(jwt.InvalidSignatureError):
        v.principal(forged)
    time.sleep(max(0.0, exp + 0.2 - time.time()))
    with pytest.raises(jwt.ExpiredSignatureError):  # a hit past exp is verified, and fails
        v.principal(good)
    assert good not in v.verified
