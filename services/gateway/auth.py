"""Bearer JWT (HS256): claims `sub` (user id), `org` (organisation id), `exp`."""
import time
from dataclasses import dataclass, field
from functools import lru_cache

import jwt
from aiohttp import web

from services.gateway.errors import unauthorized


@dataclass(frozen=True)
class Principal:
    user: str
    org: str
    expires_at: float = field(default=float("inf"), compare=False)  # the token's `exp` (unix seconds)


class BadToken(Exception):
    pass


def decode(token: str, secret: str) -> Principal:
    """The token's principal; BadToken when it is not valid or has expired (checked on every use)."""
    principal = _verified(token, secret)
    if principal.expires_at <= time.time():
        raise BadToken("the token has expired")
    return principal


# A signature check per request is ~10 % of the gateway's CPU per press: a token verified once is
# remembered (its expiry is still checked on every use). Refusals are not remembered (exceptions).
@lru_cache(maxsize=10_000)
def _verified(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "org"]})
    except jwt.ExpiredSignatureError:
        raise BadToken("the token has expired") from None
    except jwt.InvalidSignatureError:
        raise BadToken("the token's signature is not valid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise BadToken(f"the token lacks its {exc.claim!r} claim") from None
    except jwt.PyJWTError:  # (its message tells the decoder's internals, not what to do)
        raise BadToken("the token is not valid: it must be an HS256 JWT with sub, org and exp") from None
    except (ValueError, UnicodeError):  # bytes that are no token at all
        raise BadToken("the token is not valid") from None
    if not isinstance(claims["sub"], str) or not isinstance(claims["org"], str) or not claims["sub"] or not claims["org"]:
        raise BadToken("the token's sub and org claims must be non-empty strings")
    return Principal(user=claims["sub"], org=claims["org"], expires_at=float(claims["exp"]))


def issue(secret: str, org: str, user: str, ttl_seconds: int = 12 * 3600) -> str:
    return jwt.encode({"sub": user, "org": org, "exp": int(time.time()) + ttl_seconds}, secret, algorithm="HS256")


def principal_from(request: web.Request, secret: str) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("the Authorization header is missing")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    try:
        return decode(token.strip(), secret)
    except BadToken as exc:
        raise unauthorized(str(exc)) from None
