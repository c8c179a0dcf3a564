"""``auth.jwt``: verify a JSON Web Token and provide the caller's :class:`Principal`.

PyJWT (the ``jwt`` extra) is imported when a config is checked or a middleware is built,
never at import time, so a missing PyJWT is an error in the manifests that use
``auth.jwt``, not in every manifest.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import assembler
import runner
from runner.errors import Unauthorized

from ._principal import Principal, auth

if TYPE_CHECKING:
    from jwt import PyJWT
    from jwt.algorithms import AllowedPublicKeys

HMAC = ("HS256", "HS384", "HS512")
ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES256K",
    "ES384",
    "ES512",
    "EdDSA",
)
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: at least the hash size; HS384 and HS512 need more
MIN_RSA_BITS = 2048
REQUIRED_CLAIMS = ("exp", "sub")
SECRET_HINT = (
    "use at least {n} random bytes, e.g. from "
    "`python -c 'import secrets; print(secrets.token_urlsafe({n}))'`, "
    "and pass it in from the environment: `secret: ${{env.JWT_SECRET}}`"
)

_STRING: dict[str, Any] = {"type": "string", "minLength": 1}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "secret": {
            **_STRING,
            "description": "the shared HMAC secret for HS256/HS384/HS512 (at least 32 bytes; "
            "more for HS384/HS512); typically `${env.JWT_SECRET}`",
        },
        "public_key": {
            **_STRING,
            "description": "the PEM public key (`-----BEGIN PUBLIC KEY-----`) that verifies "
            "RS*/PS*/ES*/EdDSA tokens",
        },
        "algorithms": {
            "type": "array",
            "items": {"enum": [*HMAC, *ASYMMETRIC]},
            "minItems": 1,
            "uniqueItems": True,
            "description": "the algorithms a token may be signed with: only HMAC ones "
            "(with `secret`) or only asymmetric ones (with `public_key`); never `none`",
        },
        "audience": {
            **_STRING,
            "description": "the `aud` a token must carry; unset: a token with an `aud` is refused",
        },
        "issuer": {**_STRING, "description": "the `iss` a token must carry"},
        "leeway": {
            **assembler.DURATION,
            "default": 30,
            "description": "clock skew allowed on `exp`, `nbf` and `iat` (seconds, or e.g. 30s)",
        },
        "roles_claim": {
            **_STRING,
            "default": "roles",
            "description": "the claim that holds the principal's roles (a list of strings)",
        },
        "token_field": {
            **_STRING,
            "default": "token",
            "description": "the input key a token is read from when the call has no "
            "`Authorization: Bearer` header (a CLI call, a tunnel); always removed before "
            "the task sees the input",
        },
        "token_from_http_input": {
            "type": "boolean",
            "default": False,
            "description": "also take the token from an HTTP request's input (its URL "
            "query or JSON body); off: a URL's query ends up in proxy and access logs",
        },
    },
    "required": ["algorithms"],
    "additionalProperties": False,
}

#: The defaults, from the schema (declared once): a config as the factory reads it.
_DEFAULTS: dict[str, Any] = {
    key: prop["default"] for key, prop in CONFIG_SCHEMA["properties"].items() if "default" in prop
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One config problem: a message, where (keys inside the config) and a hint."""

    message: str
    at: tuple[str, ...] = ()
    hint: str = ""


class TokenRejected(Exception):
    """Why a call was refused when PyJWT did not say (no token, empty `sub`, bad roles).

    Kept as the ``__cause__`` of :class:`runner.errors.Unauthorized` for logs; callers only
    ever see the one message of ``Unauthorized``.
    """


def problems(config: Any) -> list[Problem]:
    """What is wrong with a config that passed the schema (relations between keys, keys)."""
    missing = assembler.missing_library(
        "auth.jwt", "jwt", extra="jwt", library="PyJWT with its crypto extra"
    )
    if missing is not None:
        return [Problem(missing.message, hint=missing.hint)]
    import jwt

    algorithms: list[str] = list(config.get("algorithms") or [])
    if not algorithms:
        return [Problem("`algorithms` is required and must not be empty", ("algorithms",))]
    unknown = [a for a in algorithms if a not in (*HMAC, *ASYMMETRIC)]
    if unknown:
        return [
            Problem(
                f"{unknown[0]!r} is not an accepted algorithm",
                ("algorithms",),
                "one of: " + ", ".join((*HMAC, *ASYMMETRIC)),
            )
        ]
    hmac = [a for a in algorithms if a in HMAC]
    asym = [a for a in algorithms if a not in HMAC]
    if hmac and asym:
        return [
            Problem(
                f"algorithms mix HMAC ({hmac[0]}) and asymmetric ({asym[0]}) algorithms: "
                "one key cannot safely serve both (the key-confusion attack)",
                ("algorithms",),
                "list only HS* algorithms with `secret`, or only asymmetric ones with `public_key`",
            )
        ]
    if hmac:
        return _secret_problems(jwt, config, hmac)
    if not jwt.algorithms.has_crypto:
        return [
            Problem(
                f"{asym[0]} needs the `cryptography` package, which is not installed",
                ("algorithms",),
                "pip install 'assemble[jwt]' (or 'PyJWT[crypto]>=2.13')",
            )
        ]
    return _public_key_problems(jwt, config, asym)


def _secret_problems(jwt: Any, config: Any, algorithms: list[str]) -> list[Problem]:
    first = algorithms[0]
    if "public_key" in config:
        return [
            Problem(
                f"{first} verifies with a shared `secret`, not a `public_key`",
                ("public_key",),
                "remove `public_key` and set `secret`, or list asymmetric algorithms "
                "(RS256, ES256, ...)",
            )
        ]
    if "secret" not in config:
        return [
            Problem(
                f"{first} needs `secret`",
                ("algorithms",),
                "add `secret: ${env.JWT_SECRET}` (at least 32 random bytes)",
            )
        ]
    secret: str = config["secret"]
    need = max(MIN_SECRET_BYTES, *(_digest_size(a) for a in algorithms))
    if len(secret.encode("utf-8")) < need:
        return [
            Problem(
                f"the secret is shorter than {need} bytes (UTF-8), too short for "
                + ", ".join(algorithms),
                ("secret",),
                SECRET_HINT.format(n=need),
            )
        ]
    try:
        jwt.get_algorithm_by_name(first).prepare_key(secret)
    except jwt.InvalidKeyError:
        return [
            Problem(
                "the secret is an asymmetric key or certificate, not an HMAC secret",
                ("secret",),
                "verify RS*/ES* tokens with `public_key` and asymmetric algorithms, or use "
                "a random secret: " + SECRET_HINT.format(n=need),
            )
        ]
    return []


def _digest_size(algorithm: str) -> int:
    return int(algorithm[2:]) // 8


def _public_key_problems(jwt: Any, config: Any, algorithms: list[str]) -> list[Problem]:
    first = algorithms[0]
    if "secret" in config:
        return [
            Problem(
                f"{first} verifies with a `public_key`, not a `secret`",
                ("secret",),
                "remove `secret` and set `public_key` (PEM), or list HMAC algorithms (HS256, ...)",
            )
        ]
    if "public_key" not in config:
        return [
            Problem(
                f"{first} needs `public_key`",
                ("algorithms",),
                "add `public_key:` with the issuer's PEM public key (`-----BEGIN PUBLIC KEY-----`)",
            )
        ]
    key, problem = _load_public_key(config["public_key"])
    if problem is not None:
        return [problem]
    out: list[Problem] = []
    for algorithm in algorithms:
        alg = jwt.get_algorithm_by_name(algorithm)
        try:
            alg.prepare_key(key)
        except (jwt.InvalidKeyError, TypeError):
            out.append(
                Problem(
                    f"{algorithm} cannot verify with this public_key ({_describe(key)})",
                    ("public_key",),
                    "give a key of the algorithm's type (RS*/PS*: RSA, ES256: P-256, "
                    "ES384: P-384, ES512: P-521, ES256K: secp256k1, EdDSA: Ed25519/Ed448), "
                    "or list the algorithms the key is for",
                )
            )
            continue
        if alg.check_key_length(key):
            out.append(
                Problem(
                    f"the RSA public key is shorter than {MIN_RSA_BITS} bits",
                    ("public_key",),
                    f"use an RSA key of at least {MIN_RSA_BITS} bits",
                )
            )
            break
    return out


def _describe(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA key of {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "an Ed25519 key" if isinstance(key, ed25519.Ed25519PublicKey) else "an Ed448 key"
    return f"a {type(key).__name__}"


def _load_public_key(pem: str) -> tuple[Any, Problem | None]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem.encode("utf-8")), None
    except (ValueError, TypeError, UnsupportedAlgorithm):  # an unknown key type is one too
        if "PRIVATE KEY" in pem:
            return None, Problem(
                "public_key holds a private key",
                ("public_key",),
                "give only its public half (`openssl pkey -in key.pem -pubout`), and keep "
                "the private key out of the manifest",
            )
        return None, Problem(
            "public_key is not a PEM public key",
            ("public_key",),
            "paste the whole PEM, from `-----BEGIN PUBLIC KEY-----` to "
            "`-----END PUBLIC KEY-----`, e.g. as a YAML block scalar (`public_key: |`)",
        )


def check(config: Any, report: assembler.ConfigReport) -> None:
    """``Component.check``: each problem is an ASM603 at its key."""
    for p in problems(config):
        report(p.message, at=p.at, hint=p.hint)


@dataclass(frozen=True, slots=True)
class Verifier:
    """Everything that does not change between calls, built once per middleware use."""

    decoder: PyJWT
    key: AllowedPublicKeys | bytes
    algorithms: tuple[str, ...]
    options: dict[str, Any]
    audience: str | None
    issuer: str | None
    leeway: float
    roles_claim: str
    errors: tuple[type[BaseException], ...]
    #: Tokens verified already: token -> (principal, valid from, valid until), LRU.
    #: Clients send the same token on every request; checking its signature once per
    #: token (not per request) is most of auth.jwt's cost. The key is the whole token,
    #: signature included, so only the very token that verified can hit; its time
    #: window (exp, nbf, iat, with the leeway) is checked again on every hit.
    verified: OrderedDict[str, tuple[Principal, float, float]] = field(default_factory=OrderedDict)

    def principal(self, token: str) -> Principal:
        """The verified token's principal; raises (PyJWT's error or :class:`TokenRejected`)."""
        hit = self.verified.get(token)
        if hit is not None:
            principal, start, end = hit
            if start <= time.time() <= end:
                self.verified.move_to_end(token)
                return principal
            del self.verified[token]  # expired (or not yet valid): verify, and refuse
        principal = self._verify(token)
        claims = principal.claims
        start = max(_number(claims.get("nbf")), _number(claims.get("iat"))) - self.leeway
        self.verified[token] = (principal, start, float(claims["exp"]) + self.leeway)
        if len(self.verified) > VERIFIED_TOKENS:
            self.verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        claims = self.decoder.decode(
            token,
            self.key,
            algorithms=self.algorithms,
            options=self.options,  # type: ignore[arg-type]
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
        )
        subject = claims["sub"]  # required, and a string: PyJWT checked both
        if not subject:
            raise TokenRejected("the token's `sub` is empty")
        roles = claims.get(self.roles_claim)
        if isinstance(roles, str):
            roles = [roles]
        elif roles is None:
            roles = []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenRejected(f"the token's {self.roles_claim!r} claim is not a list of strings")
        return Principal(subject=subject, roles=tuple(roles), claims=MappingProxyType(claims))


VERIFIED_TOKENS = 4096  # per middleware use


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def verifier(config: Any) -> Verifier:
    """Check ``config`` and build the key and options once (raises ``ValueError`` if bad)."""
    found = problems(config)
    if found:
        raise ValueError(
            "invalid auth.jwt config: "
            + "; ".join(f"{p.message} (at {'/'.join(p.at)})" if p.at else p.message for p in found)
        )
    import jwt

    config = {**_DEFAULTS, **config}
    algorithms = tuple(config["algorithms"])
    key: AllowedPublicKeys | bytes
    if algorithms[0] in HMAC:
        key = config["secret"].encode("utf-8")
    else:
        key, _ = _load_public_key(config["public_key"])
    require = [*REQUIRED_CLAIMS]
    if "audience" in config:
        require.append("aud")
    if "issuer" in config:
        require.append("iss")
    return Verifier(
        decoder=jwt.PyJWT(),
        key=key,
        algorithms=algorithms,
        options={"require": require, "enforce_minimum_key_length": True},
        audience=config.get("audience"),
        issuer=config.get("issuer"),
        leeway=assembler.duration(config["leeway"]),
        roles_claim=config["roles_claim"],
        errors=(jwt.PyJWTError, TokenRejected, ValueError, TypeError, KeyError),
    )


def bearer_token(request: runner.Request | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if request is None:
        return None
    value = request.header("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def make_jwt(config: Any) -> Callable[..., Awaitable[Any]]:
    """The ``auth.jwt`` factory: one verifier (key, options) per use."""
    config = {**_DEFAULTS, **(config or {})}
    v = verifier(config)
    token_field: str = config["token_field"]
    http_input = bool(config["token_from_http_input"])

    async def jwt_middleware(call: runner.TaskCall, config: Any) -> Any:
        input = call.input
        request = runner.current_request.try_use()
        token: Any = bearer_token(request)
        if isinstance(input, dict) and token_field in input:
            given = input[token_field]
            input = {k: value for k, value in input.items() if k != token_field}
            over_http = getattr(request, "transport", "") == "http"
            if token is None and (http_input or not over_http):
                token = given
        try:
            if token is None:
                raise TokenRejected(
                    "no `Authorization: Bearer` header in the request, and no "
                    f"{token_field!r} in the input where one is taken (not over HTTP unless "
                    "token_from_http_input is set)"
                )
            if not isinstance(token, str):
                raise TokenRejected(f"the input's {token_field!r} is not a string")
            principal = v.principal(token)
        except v.errors as exc:
            # One message for every cause; the cause stays on __cause__ for logs.
            raise Unauthorized() from exc
        with auth.provide(principal):
            return await call.next(input)

    return jwt_middleware


def components() -> Sequence[assembler.Component]:
    return [
        assembler.Component(
            name="auth.jwt",
            kind="middleware",
            config_schema=CONFIG_SCHEMA,
            factory=make_jwt,
            check=check,
            description="verifies a JWT (Authorization: Bearer; the input's token field "
            "outside HTTP); provides the `auth` principal; 401 otherwise",
        )
    ]
