"""Two-factor sign-in end to end, on a server with the default rule (administrators and
superadmins must enrol): enrolment, the login challenge, recovery codes, replay, rate
limits and disabling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pyotp
import pytest

from domain.roles import Role
from tests.conftest import (
    PASSWORD,
    Mailbox,
    Server,
    make_settings,
    new_database,
    register_student,
    running_server,
    unique_email,
)


@pytest.fixture(scope="module")
def server(smtp: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path_factory.mktemp("mfa"),
                                 mfa_required_roles=[Role.ADMIN, Role.SUPERADMIN],
                                 login_max_per_account=1_000)
        with running_server(settings) as s:
            yield s


@pytest.fixture
def c(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(server: Server, c: httpx.Client) -> tuple[str, str]:
    email = unique_email("admin")
    server.container.accounts.create_administrator(email, "Admin", PASSWORD, Role.ADMIN)
    r = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email, r.json()["access"]


def enrol(c: httpx.Client, access: str) -> tuple[pyotp.TOTP, dict[str, object]]:
    enrolment = c.post("/api/auth/mfa/enrol/", headers=bearer(access)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    r = c.post("/api/auth/mfa/enrol/confirm/", headers=bearer(access),
               json={"code": totp.now()})
    assert r.status_code == 200, r.text
    return totp, r.json()


def next_code(totp: pyotp.TOTP) -> str:
    """A code of a later time step than the one just used (a code works once)."""
    return totp.at(time.time() + 30)


def test_an_administrator_may_only_enrol_until_enrolled(server: Server, c: httpx.Client
                                                        ) -> None:
    _, access = admin(server, c)
    refused = c.get("/api/users/", headers=bearer(access))
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        403, "MFA_ENROLMENT_REQUIRED")
    assert c.get("/api/auth/mfa/", headers=bearer(access)).json() == {
        "enabled": False, "required": True, "recovery_codes_left": 0}
    enrolment = c.post("/api/auth/mfa/enrol/", headers=bearer(access)).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/ApraNova:")
    assert f"secret={enrolment['secret']}" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith("<svg")
    wrong = c.post("/api/auth/mfa/enrol/confirm/", headers=bearer(access),
                   json={"code": "000000" if pyotp.TOTP(enrolment["secret"]).now() != "000000"
                         else "111111"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "INVALID_CODE")
    r = c.post("/api/auth/mfa/enrol/confirm/", headers=bearer(access),
               json={"code": pyotp.TOTP(enrolment["secret"]).now()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["recovery_codes"]) == 10 and len(set(body["recovery_codes"])) == 10
    assert c.get("/api/users/", headers=bearer(body["access"])).status_code == 200
    # The enrol-only session ended with enrolment.
    assert c.get("/api/auth/mfa/", headers=bearer(access)).status_code == 401


def test_login_answers_a_challenge_that_a_code_completes_once(server: Server,
                                                              c: httpx.Client) -> None:
    email, access = admin(server, c)
    totp, _ = enrol(c, access)
    login = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD}).json()
    assert login["mfa_required"] is True and "access" not in login
    verify = {"challenge": login["challenge"], "code": next_code(totp)}
    r = c.post("/api/auth/mfa/verify/", json=verify)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == email and r.json()["user"]["role"] == "admin"
    # The challenge is used up, and so is the code's time step.
    again = c.post("/api/auth/mfa/verify/", json=verify)
    assert again.json()["error"]["code"] == "MFA_CHALLENGE_INVALID"
    second = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD}).json()
    replay = c.post("/api/auth/mfa/verify/", json={**verify, "challenge": second["challenge"]})
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "INVALID_CODE")


def test_a_recovery_code_signs_in_once_and_is_recorded(server: Server, c: httpx.Client
                                                       ) -> None:
    email, access = admin(server, c)
    _, enrolled = enrol(c, access)
    codes = enrolled["recovery_codes"]
    assert isinstance(codes, list)
    user_id = str(enrolled["user"]["id"])  # type: ignore[index]
    for expected in ("ok", "INVALID_CODE"):
        challenge = c.post("/api/auth/login/", json={
            "email": email, "password": PASSWORD}).json()["challenge"]
        r = c.post("/api/auth/mfa/verify/", json={"challenge": challenge,
                                                  "recovery_code": codes[0].upper()})
        assert (r.json().get("error") or {}).get("code", "ok") == expected, r.text
    challenge = c.post("/api/auth/login/", json={
        "email": email, "password": PASSWORD}).json()["challenge"]
    token = c.post("/api/auth/mfa/verify/", json={
        "challenge": challenge, "recovery_code": codes[1]}).json()["access"]
    assert c.get("/api/auth/mfa/", headers=bearer(token)).json()["recovery_codes_left"] == 8
    names = [type(e).__name__ for e in server.container.store.events.get(uuid.UUID(user_id))]
    assert names.count("RecoveryCodeUsed") == 2 and "TwoFactorEnrolled" in names


def test_codes_are_rate_limited_per_account(server: Server, c: httpx.Client) -> None:
    email, access = admin(server, c)
    enrol(c, access)
    challenge = c.post("/api/auth/login/", json={
        "email": email, "password": PASSWORD}).json()["challenge"]
    statuses = [c.post("/api/auth/mfa/verify/", json={
        "challenge": challenge, "recovery_code": f"wrong-{i}"}).status_code for i in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


def test_disabling_needs_a_current_code(server: Server, c: httpx.Client) -> None:
    email, access = admin(server, c)
    totp, enrolled = enrol(c, access)
    token = str(enrolled["access"])
    bad = c.post("/api/auth/mfa/disable/", headers=bearer(token), json={"code": "12345"})
    assert bad.status_code == 422
    r = c.post("/api/auth/mfa/disable/", headers=bearer(token), json={"code": next_code(totp)})
    assert r.status_code == 204, r.text
    assert c.get("/api/auth/mfa/", headers=bearer(token)).json()["enabled"] is False
    login = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD}).json()
    assert "access" in login  # no challenge now (and, for an admin, enrol-only again)
    assert c.get("/api/users/", headers=bearer(login["access"])).status_code == 403


def test_a_student_may_enrol_but_need_not(server: Server, c: httpx.Client) -> None:
    student = register_student(c)
    assert c.get("/api/curriculum/tracks/", headers=student.headers).status_code == 200
    totp, _ = enrol(c, student.access)
    login = c.post("/api/auth/login/", json={"email": student.email, "password": PASSWORD})
    assert login.json()["mfa_required"] is True
    done = c.post("/api/auth/mfa/verify/", json={"challenge": login.json()["challenge"],
                                                 "code": next_code(totp)})
    assert done.status_code == 200 and done.json()["user"]["role"] == "student"


def test_the_secret_is_not_in_the_log_or_stored_in_plaintext(server: Server,
                                                             c: httpx.Client) -> None:
    _, access = admin(server, c)
    secret = c.post("/api/auth/mfa/enrol/", headers=bearer(access)).json()["secret"]
    with psycopg.connect(server.container.settings.database_url or "") as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        for table in tables:
            found = conn.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s',
                (f"%{secret}%",)).fetchone()
            assert found == (0,), table
