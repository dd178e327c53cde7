"""Bearer JWT (HS256): claims `sub` (user id), `org` (organisation id), `exp`; `iat` (required in production),
`iss` and `aud` (checked when JWT_ISSUER / JWT_AUDIENCE are set). A token may live at most
JWT_MAX_LIFETIME_HOURS (`exp` - `iat`); clocks may differ by JWT_LEEWAY_SECONDS."""

import time
from dataclasses import dataclass, field
from functools import lru_cache

import jwt
from aiohttp import web

from shared.problems import Unauthorized


@dataclass(frozen=True)
class Principal:
    user: str
    org: str
    expires_at: float = field(default=float("inf"), compare=False)  # the token's `exp` (unix seconds)


class BadToken(Exception):
    pass


@dataclass(frozen=True)
class TokenRules:
    """What a token must be, besides signed with `secret` (GatewaySettings.token_rules). Hashable: the cache key."""

    secret: str = field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    leeway: float = 30.0
    max_lifetime: float = 24 * 3600.0
    require_iat: bool = False


def decode(token: str, rules: TokenRules | str) -> Principal:
    """The token's principal; BadToken when it is not valid or has expired (checked on every use)."""
    rules = rules if isinstance(rules, TokenRules) else TokenRules(rules)
    principal = _verified(token, rules)
    if principal.expires_at + rules.leeway <= time.time():
        raise BadToken("the token has expired")
    return principal


# A signature check per request is ~10 % of the gateway's CPU per press: a token verified once is
# remembered (its expiry is still checked on every use). Refusals are not remembered (exceptions).
@lru_cache(maxsize=10_000)
def _verified(token: str, rules: TokenRules) -> Principal:
    required = [
        "exp",
        "sub",
        "org",
        *(["iat"] if rules.require_iat else []),
        *(["iss"] if rules.issuer else []),
        *(["aud"] if rules.audience else []),
    ]
    try:
        claims = jwt.decode(
            token,
            rules.secret,
            algorithms=["HS256"],
            issuer=rules.issuer,
            audience=rules.audience,
            leeway=rules.leeway,
            options={"require": required, "verify_aud": bool(rules.audience)},
        )
    except jwt.ExpiredSignatureError:
        raise BadToken("the token has expired") from None
    except jwt.InvalidSignatureError:
        raise BadToken("the token's signature is not valid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise BadToken(f"the token lacks its {exc.claim!r} claim") from None
    except jwt.InvalidIssuerError:
        raise BadToken(f"the token's issuer (iss) is not {rules.issuer!r}") from None
    except jwt.InvalidAudienceError:
        raise BadToken(f"the token's audience (aud) is not {rules.audience!r}") from None
    except jwt.ImmatureSignatureError:
        raise BadToken("the token is not valid yet (iat or nbf in the future)") from None
    except jwt.PyJWTError:  # (its message tells the decoder's internals, not what to do)
        raise BadToken("the token is not valid: it must be an HS256 JWT with sub, org and exp") from None
    except (ValueError, UnicodeError):  # bytes that are no token at all
        raise BadToken("the token is not valid") from None
    if (
        not isinstance(claims["sub"], str)
        or not isinstance(claims["org"], str)
        or not claims["sub"]
        or not claims["org"]
    ):
        raise BadToken("the token's sub and org claims must be non-empty strings")
    issued = claims.get("iat")
    if issued is not None and float(claims["exp"]) - float(issued) > rules.max_lifetime:
        raise BadToken(f"the token lives longer than {rules.max_lifetime / 3600:g} h (exp - iat)")
    return Principal(user=claims["sub"], org=claims["org"], expires_at=float(claims["exp"]))


def issue(
    secret: str,
    org: str,
    user: str,
    ttl_seconds: int = 12 * 3600,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "org": org,
        "iat": now,
        "exp": now + ttl_seconds,
        **({"iss": issuer} if issuer else {}),
        **({"aud": audience} if audience else {}),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def principal_from(request: web.Request, secret: TokenRules | str) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("the Authorization header is missing")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    try:
        return decode(token.strip(), secret)
    except BadToken as exc:
        raise Unauthorized(str(exc)) from None
