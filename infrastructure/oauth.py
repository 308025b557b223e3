"""Identity providers over Authlib's OAuth 2.0 client: OpenID Connect (Google, or any
issuer with a discovery document) with ID tokens checked by joserfc, and GitHub.

Authlib builds the authorization URL (state, PKCE S256, nonce) and exchanges the code;
joserfc (Authlib's JOSE library) verifies the ID token's signature against the issuer's
JWKS and its claims (iss, aud, exp, iat, nonce). Nothing here is trusted until checked.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from application.ports import IdentityRefused, ProviderAuthorization, ProviderIdentity
from domain.text import CONTROL, UNSTORABLE

METADATA_SECONDS = 3600
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256", "ES256", "PS256"]


def verified_email(value: Any, verified: Any) -> str | None:
    """The address if the provider says it is verified and it looks like one."""
    if verified is not True or not isinstance(value, str) or len(value) > 254:
        return None
    local, at, domain = value.partition("@")
    if not (local and at and domain) or "@" in domain or UNSTORABLE.search(value) \
            or CONTROL.search(value) or " " in value:
        return None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _refuse(what: str, error: Exception) -> IdentityRefused:
    return IdentityRefused(f"{what}: {type(error).__name__}")


class OpenIDConnect:
    """An OpenID Provider found by discovery from its issuer URL."""

    def __init__(self, name: str, issuer: str, client_id: str, client_secret: str,
                 timeout: float = 10.0) -> None:
        self.name = name
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata and time.monotonic() - self._metadata[0] < METADATA_SECONDS:
                return self._metadata[1]
        try:
            response = httpx.get(f"{self.issuer}/.well-known/openid-configuration",
                                 timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise _refuse("the provider's discovery document is unavailable", error) from error
        if not isinstance(document, dict) or document.get("issuer") != self.issuer or not all(
                isinstance(document.get(k), str) for k in
                ("authorization_endpoint", "token_endpoint", "jwks_uri")):
            raise IdentityRefused("the provider's discovery document is not for this issuer")
        with self._lock:
            self._metadata = (time.monotonic(), document)
        return document

    def _key_set(self, refresh: bool) -> KeySet:
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        try:
            response = httpx.get(self.metadata()["jwks_uri"], timeout=self.timeout)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, TypeError, JoseError) as error:
            raise _refuse("the provider's keys are unavailable", error) from error
        with self._lock:
            self._keys = keys
        return keys

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(self.client_id, self.client_secret, scope="openid email profile",
                            redirect_uri=redirect_uri, code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_post",
                            timeout=self.timeout)

    def authorization(self, redirect_uri: str) -> ProviderAuthorization:
        verifier, nonce = generate_token(48), generate_token(32)
        with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(
                self.metadata()["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        return ProviderAuthorization(url, state, verifier, nonce)

    def identity(self, code: str, redirect_uri: str, verifier: str, nonce: str | None
                 ) -> ProviderIdentity:
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(self.metadata()["token_endpoint"], code=code,
                                           code_verifier=verifier)
        except (OAuthError, httpx.HTTPError, ValueError, KeyError) as error:
            raise _refuse("the provider refused the code", error) from error
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityRefused("the provider sent no ID token")
        claims = self.validate(id_token, nonce)
        email = verified_email(claims.get("email"), claims.get("email_verified"))
        return ProviderIdentity(provider=self.name, issuer=self.issuer,
                                subject=str(claims["sub"]), email=email,
                                name=_text(claims.get("name")))

    def validate(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims if its signature and claims hold; a key the cached set
        lacks makes one fresh fetch of the JWKS (the provider rotated its keys)."""
        for refresh in (False, True):
            try:
                decoded = jwt.decode(id_token, self._key_set(refresh), algorithms=ALGORITHMS)
                break
            except (JoseError, ValueError, TypeError) as error:
                if refresh:
                    raise _refuse("the ID token's signature is not the provider's",
                                  error) from error
        claims = dict(decoded.claims)
        if nonce is None:
            raise IdentityRefused("an OpenID Connect flow always has a nonce")
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS, iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id}, exp={"essential": True},
            iat={"essential": True}, sub={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as error:
            raise _refuse("the ID token's claims do not hold", error) from error
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and \
                claims.get("azp") != self.client_id:
            raise IdentityRefused("the ID token was issued to another party")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 255 or \
                UNSTORABLE.search(subject):
            raise IdentityRefused("the ID token names no usable subject")
        return claims
