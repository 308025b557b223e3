"""Holes found when tried as an attacker would, each closed by the one policy."""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import UUID

import httpx
import jwt
import pytest

from application.accounts import UserChanges
from application.authorization import Actor
from domain.accounts import Account
from domain.errors import Forbidden
from domain.roles import Role
from tests.conftest import (
    PASSWORD,
    Mailbox,
    Server,
    login,
    make_settings,
    make_staff,
    register_student,
    running_server,
    unique_email,
)
from tests.integration.test_quizzes_api import generate, publish


def test_only_a_superadmin_changes_an_administrator_or_a_superadmin(
    server: Server, client: httpx.Client,
) -> None:
    admin, other_admin = make_staff(server, client, Role.ADMIN), make_staff(
        server, client, Role.ADMIN)
    root, other_root = make_staff(server, client, Role.SUPERADMIN), make_staff(
        server, client, Role.SUPERADMIN)
    for target in (root, other_admin):
        for change in ({"is_active": False}, {"name": "Mallory"}, {"reason": "x"}):
            r = client.put(f"/api/users/{target.id}/", headers=admin.headers, json=change)
            assert r.status_code == 403, (target.role, change, r.text)
            assert r.json()["error"]["code"] == "SUPERADMIN_REQUIRED"
        assert client.delete(f"/api/users/{target.id}/",
                             headers=admin.headers).status_code == 403
    # The superadmin is untouched and still signs in.
    assert login(client, root.email).role == "superadmin"
    # Nobody manages their own account here: a superadmin cannot switch themselves off.
    r = client.put(f"/api/users/{root.id}/", headers=root.headers, json={"is_active": False})
    assert r.status_code == 403 and r.json()["error"]["code"] == "CANNOT_MANAGE_SELF"
    # A superadmin does manage the others.
    r = client.put(f"/api/users/{other_admin.id}/", headers=root.headers,
                   json={"name": "Renamed"})
    assert r.status_code in (200, 202), r.text
    r = client.put(f"/api/users/{other_root.id}/", headers=root.headers,
                   json={"is_active": False, "reason": "left"})
    assert r.status_code in (200, 202), r.text
    # Admins still manage everyone else.
    student = register_student(client)
    r = client.put(f"/api/users/{student.id}/", headers=admin.headers, json={"name": "S"})
    assert r.status_code in (200, 202), r.text


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANALYST])
def test_auditors_and_analysts_change_nothing_but_their_own_session(
    server: Server, client: httpx.Client, role: Role,
) -> None:
    reader = make_staff(server, client, role)
    trainer = make_staff(server, client, Role.TRAINER)
    quiz = publish(client, trainer, generate(client, trainer, 2))
    refused = [
        ("POST", f"/api/quiz/quizzes/{quiz['id']}/start/", None),
        ("PUT", "/api/users/profile/", {"name": "Eve"}),
        ("POST", "/api/quiz/quizzes/generate/", {"title": "t", "prompt": "SQL",
                                                 "num_questions": 1}),
        ("POST", "/api/curriculum/progress/", {"project_id": "dp-01-sql-foundations",
                                               "action": "start"}),
        ("POST", "/api/users/workspace/create/", None),
        ("POST", "/api/payments/create-intent/", None),
    ]
    for method, path, body in refused:
        r = client.request(method, path, headers=reader.headers, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "READ_ONLY_ROLE"
    assert client.get("/api/users/profile/", headers=reader.headers).json()["name"] != "Eve"
    # Their own session: refresh, then log out.
    r = client.post("/api/auth/token/refresh/", json={"refresh": reader.refresh})
    assert r.status_code == 200
    fresh = {"Authorization": f"Bearer {r.json()['access']}"}
    assert client.post("/api/auth/logout/", headers=fresh, json={}).status_code == 204


def test_a_session_is_bound_to_its_account(server: Server, client: httpx.Client) -> None:
    a, b = register_student(client), register_student(client)
    claims = jwt.decode(a.access, options={"verify_signature": False})
    secret = server.container.settings.jwt_secret
    assert secret is not None
    forged = jwt.encode({**claims, "sub": b.id}, secret.get_secret_value(), algorithm="HS256")
    # The session is A's: while it is remembered as active and when it is not.
    assert client.get("/api/users/profile/", headers=a.headers).status_code == 200
    for _ in range(2):
        r = client.get("/api/users/profile/", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REVOKED"
        server.container.sessions.forget("all")
    refresh = jwt.decode(a.refresh, options={"verify_signature": False})
    forged_refresh = jwt.encode({**refresh, "sub": b.id}, secret.get_secret_value(),
                                algorithm="HS256")
    r = client.post("/api/auth/token/refresh/", json={"refresh": forged_refresh})
    assert r.status_code == 401
    assert UUID(b.id) != UUID(a.id)


def test_forwarded_for_is_not_believed_unless_from_a_configured_proxy(
    database_url: str, smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    settings = make_settings(database_url, smtp[1], tmp_path, login_max_per_ip=3)
    with running_server(settings, background=False) as s, s.client() as c:
        email = unique_email()
        statuses = [c.post("/api/auth/login/", headers={"X-Forwarded-For": f"10.0.0.{i}"},
                           json={"email": email, "password": PASSWORD}).status_code
                    for i in range(5)]
        assert statuses[:3] == [401, 401, 401] and 429 in statuses[3:], statuses


def test_two_superadmins_switching_each_other_off_at_once_leave_one(server: Server) -> None:
    accounts = server.container.accounts
    for _ in range(5):
        pair = [accounts.create_administrator(unique_email("root"), "Root", PASSWORD,
                                              Role.SUPERADMIN).account_id for _ in range(2)]
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def switch_off(actor: UUID, target: UUID, start: threading.Barrier = start,
                       outcomes: list[str] = outcomes) -> None:
            start.wait()
            try:
                accounts.update_user(Actor(actor, Role.SUPERADMIN), target,
                                     UserChanges(is_active=False, reason="race"))
                outcomes.append("done")
            except Forbidden as refused:
                outcomes.append(refused.code)

        threads = [threading.Thread(target=switch_off, args=(a, b))
                   for a, b in (pair, pair[::-1])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(outcomes) == ["SUPERADMIN_REQUIRED", "done"]
        active = [server.container.store.load(Account, a).active for a in pair]
        assert active.count(True) == 1
