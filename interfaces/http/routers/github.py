"""GitHub: linking an account (OAuth) and the pull-request webhook."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from infrastructure.github import github_signature_valid
from interfaces.http.dependencies import (
    GitHubCommandsDep,
    GitHubWebhookSecretDep,
    PrincipalDep,
    WebhookInboxDep,
)
from interfaces.http.errors import error_response
from interfaces.http.routing import Router
from interfaces.http.schemas import ErrorOut, ReceivedOut

router = Router(tags=["github"])


class ConnectOut(BaseModel):
    authorize_url: str


class LinkedOut(BaseModel):
    github_username: str


@router.get("/api/users/github/connect/", response_model=ConnectOut)
def connect(p: PrincipalDep, github: GitHubCommandsDep) -> ConnectOut:
    """Where to send the user to grant access. The frontend that receives GitHub's redirect
    calls the callback below with the student's own token: the `state` is single-use,
    bound to this account and session, and expires in ten minutes."""
    return ConnectOut(authorize_url=github.authorize_url(p.actor, p.session_id))


@router.get("/api/users/github/callback/", response_model=LinkedOut)
def callback(p: PrincipalDep, github: GitHubCommandsDep, response: Response,
             code: Annotated[str, Query(min_length=1, max_length=200)],
             state: Annotated[str, Query(min_length=1, max_length=2000)]) -> LinkedOut:
    login, position = github.complete_link(p.actor, p.session_id, state, code)
    response.headers["X-Position"] = str(position)
    return LinkedOut(github_username=login)


@router.post("/api/github/webhook/", response_model=ReceivedOut,
             responses={401: {"model": ErrorOut, "description": "Bad signature"}})
async def webhook(
    request: Request, github: GitHubCommandsDep, webhooks: WebhookInboxDep,
    secret: GitHubWebhookSecretDep, response: Response,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_event: Annotated[str | None, Header(max_length=100)] = None,
    x_github_delivery: Annotated[str | None, Header(max_length=200)] = None,
) -> ReceivedOut | Response:
    """Pull-request events: signature checked on the raw body, deliveries deduplicated."""
    if secret is None:
        return error_response(409, "GITHUB_NOT_CONFIGURED", "No webhook secret configured")
    body = await request.body()
    if not github_signature_valid(body, x_hub_signature_256, secret.get_secret_value()):
        return error_response(401, "WEBHOOK_SIGNATURE_INVALID", "Bad X-Hub-Signature-256")
    if not x_github_delivery or not x_github_event:
        return error_response(400, "MALFORMED_WEBHOOK", "Missing GitHub delivery headers")
    try:
        payload = json.loads(body)
        action = str(payload.get("action", ""))
    except (ValueError, AttributeError):
        return error_response(400, "MALFORMED_WEBHOOK", "The body is not a JSON object")
    delivery, event = x_github_delivery, x_github_event

    def record() -> int:
        if event != "pull_request":
            return 0
        return github.record_pull_request(delivery, action, payload)

    position = await run_in_threadpool(webhooks.receive, "github", delivery, event, record)
    if position is None:
        return ReceivedOut(received=True, duplicate=True)
    # The position lets a reader of the submission see this delivery (0: nothing changed).
    response.headers["X-Position"] = str(position)
    return ReceivedOut(received=True)
