"""GitHub over its REST API with httpx, and its webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from application.ports import (
    HostedRepository,
    IdentityRefused,
    ProviderAuthorization,
    ProviderIdentity,
)
from infrastructure.oauth import verified_email

SIGN_IN_SCOPE = "read:user user:email"


class GitHubError(Exception):
    pass


class GitHubClient:
    """GitHub's REST API, and its OAuth 2.0 (through Authlib) both for linking an account
    (scope `repo`) and as an identity provider for signing in."""

    def __init__(self, client_id: str, client_secret: str, api_base: str, oauth_base: str,
                 timeout: float = 15.0) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api = api_base.rstrip("/")
        self.oauth = oauth_base.rstrip("/")
        self.timeout = timeout

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28"}

    def _client(self, redirect_uri: str, scope: str) -> OAuth2Client:
        return OAuth2Client(self.client_id, self.client_secret, scope=scope,
                            redirect_uri=redirect_uri, code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_post",
                            timeout=self.timeout)

    def authorize_url(self, redirect_uri: str, scope: str, state: str, verifier: str) -> str:
        with self._client(redirect_uri, scope) as client:
            url, _ = client.create_authorization_url(f"{self.oauth}/login/oauth/authorize",
                                                     state=state, code_verifier=verifier)
        return str(url)

    def _token(self, code: str, redirect_uri: str, verifier: str) -> str:
        with self._client(redirect_uri, "") as client:
            token = client.fetch_token(f"{self.oauth}/login/oauth/access_token", code=code,
                                       code_verifier=verifier,
                                       headers={"Accept": "application/json"})
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise GitHubError(f"GitHub refused the code: {token.get('error')}")
        return access

    def _get(self, token: str, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", headers=self._headers(token),
                             timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str
                      ) -> tuple[str, str]:
        token = self._token(code, redirect_uri, code_verifier)
        return token, str(self._get(token, "/user")["login"])

    # -- as an identity provider -------------------------------------------------------------

    def authorization(self, redirect_uri: str) -> ProviderAuthorization:
        state, verifier = generate_token(30), generate_token(48)
        return ProviderAuthorization(
            self.authorize_url(redirect_uri, SIGN_IN_SCOPE, state, verifier), state, verifier,
            None)

    def identity(self, code: str, redirect_uri: str, verifier: str, nonce: str | None
                 ) -> ProviderIdentity:
        try:
            token = self._token(code, redirect_uri, verifier)
            user, emails = self._get(token, "/user"), self._get(token, "/user/emails")
        except (GitHubError, OAuthError, httpx.HTTPError, ValueError) as error:
            raise IdentityRefused(f"GitHub refused the code: {type(error).__name__}") from error
        subject = user.get("id") if isinstance(user, dict) else None
        if isinstance(subject, bool) or not isinstance(subject, int) or subject <= 0:
            raise IdentityRefused("GitHub named no user")
        primary = [e for e in emails if isinstance(e, dict) and e.get("primary")] \
            if isinstance(emails, list) else []
        email = verified_email(primary[0].get("email"), primary[0].get("verified")) \
            if primary else None
        name = user.get("name") or user.get("login")
        return ProviderIdentity(provider="github", issuer=self.oauth, subject=str(subject),
                                email=email, name=name if isinstance(name, str) else "")

    def create_from_template(self, token: str, template: str, owner: str, name: str
                             ) -> HostedRepository:
        response = httpx.post(f"{self.api}/repos/{template}/generate", timeout=self.timeout,
                              headers=self._headers(token),
                              json={"owner": owner, "name": name, "private": True})
        if response.status_code == 422:
            # Already there (a retried message): use the existing repository.
            response = httpx.get(f"{self.api}/repos/{owner}/{name}",
                                 headers=self._headers(token), timeout=self.timeout)
        response.raise_for_status()
        body = response.json()
        return HostedRepository(str(body["full_name"]), str(body["html_url"]))


def github_signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.removeprefix("sha256="), expected)
