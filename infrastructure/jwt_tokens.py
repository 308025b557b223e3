"""JWT access and refresh tokens: HS256 pinned, typ/iss/aud checked, the two kinds distinct."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from uuid import UUID

import jwt

from application.auth import Unauthenticated
from application.ports import RefreshClaims, TokenPair

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
VERIFIED_TOKENS = 4096
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"]


ENROL_ONLY = "mfa-enrolment"


@dataclass(frozen=True)
class AccessClaims:
    account_id: UUID
    role: str
    session_id: UUID
    enrol_only: bool = False


class JwtTokens:
    def __init__(
        self, secret: str, issuer: str, audience: str, access_ttl: int, refresh_ttl: int
    ) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("The JWT secret must be at least 32 bytes for HS256")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        # Every request presents its access token again; verifying the signature and
        # claims cost more than the rest of authentication (measured), so verified tokens
        # are remembered. Failures are not (lru_cache does not cache exceptions).
        self._verified_access = functools.lru_cache(maxsize=VERIFIED_TOKENS)(
            self._verify_access)

    @property
    def refresh_ttl_seconds(self) -> int:
        return self._refresh_ttl

    def new_jti(self) -> str:
        return secrets.token_urlsafe(16)

    def issue(self, account_id: UUID, role: str, session_id: UUID, refresh_jti: str,
              enrol_only: bool = False) -> TokenPair:
        now = int(time.time())
        common = {"sub": str(account_id), "sid": str(session_id), "iss": self._issuer,
                  "aud": self._audience, "iat": now}
        access = {**common, "typ": ACCESS, "role": role, "jti": self.new_jti(),
                  "exp": now + self._access_ttl}
        if enrol_only:
            access["scope"] = ENROL_ONLY
        refresh = {**common, "typ": REFRESH, "jti": refresh_jti, "exp": now + self._refresh_ttl}
        return TokenPair(
            access=jwt.encode(access, self._secret, algorithm=ALGORITHM),
            refresh=jwt.encode(refresh, self._secret, algorithm=ALGORITHM),
        )

    def _decode(self, token: str, expected_typ: str) -> dict[str, object]:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=self._audience,
                issuer=self._issuer, options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token has expired", code="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise Unauthenticated("Token is invalid", code="TOKEN_INVALID") from None
        if claims.get("typ") != expected_typ:
            raise Unauthenticated(f"An {expected_typ} token is required", code="TOKEN_INVALID")
        return claims

    def decode_access(self, token: str) -> AccessClaims:
        claims, expires = self._verified_access(token)
        # A remembered token is still checked against the clock, as the library would.
        if expires <= int(time.time()):
            raise Unauthenticated("Token has expired", code="TOKEN_EXPIRED")
        return claims

    def _verify_access(self, token: str) -> tuple[AccessClaims, int]:
        claims = self._decode(token, ACCESS)
        try:
            return (AccessClaims(UUID(str(claims["sub"])), str(claims["role"]),
                                 UUID(str(claims["sid"])), claims.get("scope") == ENROL_ONLY),
                    int(str(claims["exp"])))
        except (KeyError, ValueError):
            raise Unauthenticated("Token is invalid", code="TOKEN_INVALID") from None

    def decode_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, REFRESH)
        try:
            return RefreshClaims(UUID(str(claims["sub"])), UUID(str(claims["sid"])),
                                 str(claims["jti"]))
        except ValueError:
            raise Unauthenticated("Token is invalid", code="TOKEN_INVALID") from None

    def pkce_verifier(self, state: str) -> str:
        digest = hmac.new(self._secret.encode(), f"pkce:{state}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
