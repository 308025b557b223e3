"""GitHub over its REST API with httpx, and its webhook signatures."""

from __future__ import annotations

import hashlib
import hmac

import httpx

from application.ports import HostedRepository


class GitHubError(Exception):
    pass


class GitHubClient:
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

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str
                      ) -> tuple[str, str]:
        response = httpx.post(f"{self.oauth}/login/oauth/access_token", timeout=self.timeout,
                              headers={"Accept": "application/json"},
                              data={"client_id": self.client_id,
                                    "client_secret": self.client_secret, "code": code,
                                    "redirect_uri": redirect_uri,
                                    "code_verifier": code_verifier})
        response.raise_for_status()
        token = response.json().get("access_token")
        if not token:
            raise GitHubError(f"GitHub refused the code: {response.json().get('error')}")
        user = httpx.get(f"{self.api}/user", headers=self._headers(token), timeout=self.timeout)
        user.raise_for_status()
        return str(token), str(user.json()["login"])

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
