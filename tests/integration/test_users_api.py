"""Profiles, administration, roles, deactivation and trainer assignment over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from domain.roles import Role
from tests.conftest import (
    PASSWORD,
    Server,
    User,
    login,
    make_staff,
    register_student,
    unique_email,
)


def test_profile_read_and_update_with_read_your_writes(
    client: httpx.Client, student: User,
) -> None:
    r = client.get("/api/users/profile/", headers=student.headers)
    assert r.status_code == 200
    assert r.json()["role"] == "student" and r.json()["track"] == "DP"
    r = client.put("/api/users/profile/", headers=student.headers, json={"name": "Grace H"})
    assert r.status_code == 200 and r.json()["name"] == "Grace H"
    r = client.get("/api/users/profile/",
                   headers={**student.headers, "X-Position": r.headers["X-Position"]})
    assert r.json()["name"] == "Grace H"


def test_profile_cannot_change_role_track_or_email(client: httpx.Client, student: User) -> None:
    for field, value in (("role", "admin"), ("track", "FSD"), ("email", "x@example.com")):
        r = client.put("/api/users/profile/", headers=student.headers,
                       json={"name": "N", field: value})
        assert r.status_code == 422, field
    assert client.get("/api/users/profile/", headers=student.headers).json()["role"] == "student"


def test_students_and_trainers_cannot_list_or_edit_users(
    server: Server, client: httpx.Client, student: User, trainer: User,
) -> None:
    other = register_student(client)
    for who in (student, trainer):
        assert client.get("/api/users/", headers=who.headers).status_code == 403
        r = client.put(f"/api/users/{other.id}/", headers=who.headers, json={"name": "Hacked"})
        assert r.status_code == 403
        r = client.post("/api/users/", headers=who.headers, json={
            "email": unique_email(), "password": PASSWORD, "name": "X", "role": "admin"})
        assert r.status_code == 403
    # A student can't see another student (and isn't told it exists).
    r = client.get(f"/api/users/{other.id}/", headers=student.headers)
    assert r.status_code == 404
    assert client.get(f"/api/users/{student.id}/", headers=student.headers).status_code == 200


def test_admin_lists_filters_and_pages_users(
    client: httpx.Client, admin: User,
) -> None:
    for _ in range(3):
        register_student(client, name="Pager Person")
    r = client.get("/api/users/", headers=admin.headers,
                   params={"search": "Pager Person", "page_size": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] >= 3 and len(body["results"]) == 2
    assert body["previous"] is None and "page=2" in body["next"]
    second = client.get(body["next"], headers=admin.headers).json()
    assert second["previous"] is not None
    assert {u["id"] for u in second["results"]}.isdisjoint({u["id"] for u in body["results"]})
    r = client.get("/api/users/", headers=admin.headers, params={"role": "trainer"})
    assert all(u["role"] == "trainer" for u in r.json()["results"])
    r = client.get("/api/users/", headers=admin.headers, params={"page_size": 1000})
    assert r.status_code == 422


def test_admin_creates_trainers_and_admins_but_not_superadmins(
    client: httpx.Client, admin: User,
) -> None:
    for role in ("trainer", "admin", "auditor"):
        r = client.post("/api/users/", headers=admin.headers, json={
            "email": unique_email(role), "password": PASSWORD, "name": role, "role": role})
        assert r.status_code == 201, r.text
        assert r.json()["role"] == role
    r = client.post("/api/users/", headers=admin.headers, json={
        "email": unique_email(), "password": PASSWORD, "name": "S", "role": "superadmin"})
    assert r.status_code == 403
    r = client.post("/api/users/", headers=admin.headers, json={
        "email": unique_email(), "password": PASSWORD, "name": "S", "role": "student"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "TRACK_REQUIRED"


def test_nobody_raises_their_own_role(
    client: httpx.Client, admin: User, student: User,
) -> None:
    r = client.put(f"/api/users/{admin.id}/", headers=admin.headers, json={"role": "superadmin"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "CANNOT_MANAGE_SELF"
    r = client.put(f"/api/users/{student.id}/", headers=student.headers, json={"role": "admin"})
    assert r.status_code == 403


def test_role_change_is_an_event_with_the_actor_and_ends_old_tokens(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    user = register_student(client)
    r = client.put(f"/api/users/{user.id}/", headers=admin.headers,
                   json={"role": "trainer", "reason": "joined the staff"})
    assert r.status_code == 200 and r.json()["role"] == "trainer"
    assert r.json()["track"] == "DP"
    # The old token carried role=student; it no longer works.
    assert client.get("/api/users/profile/", headers=user.headers).status_code == 401
    from uuid import UUID

    from domain.accounts import Account

    events = list(server.container.store.events.get(UUID(user.id)))
    [change] = [e for e in events if isinstance(e, Account.RoleChanged)]
    assert (change.old_role, change.new_role) == ("student", "trainer")
    assert str(change.actor_id) == admin.id and change.reason == "joined the staff"
    assert login(client, user.email).role == "trainer"


def test_admin_cannot_demote_another_admin_but_superadmin_can(
    server: Server, client: httpx.Client, admin: User, superadmin: User,
) -> None:
    other_admin = make_staff(server, client, Role.ADMIN)
    r = client.put(f"/api/users/{other_admin.id}/", headers=admin.headers,
                   json={"role": "trainer"})
    assert r.status_code == 403
    r = client.put(f"/api/users/{other_admin.id}/", headers=superadmin.headers,
                   json={"role": "trainer"})
    assert r.status_code == 200 and r.json()["role"] == "trainer"


def test_only_superadmin_deletes_and_delete_deactivates(
    server: Server, client: httpx.Client, admin: User, superadmin: User,
) -> None:
    user = register_student(client)
    assert client.delete(f"/api/users/{user.id}/", headers=admin.headers).status_code == 403
    r = client.delete(f"/api/users/{user.id}/", headers=superadmin.headers,
                      params={"reason": "left the course"})
    assert r.status_code == 204
    detail = client.get(f"/api/users/{user.id}/", headers={
        **superadmin.headers, "X-Position": r.headers["X-Position"]}).json()
    assert detail["is_active"] is False
    assert client.get("/api/users/profile/", headers=user.headers).status_code == 401
    r = client.post("/api/auth/login/", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ACCOUNT_INACTIVE"
    # History stays: the account's events are all still in the log.
    from uuid import UUID

    assert len(list(server.container.store.events.get(UUID(user.id)))) >= 2
    r = client.delete(f"/api/users/{superadmin.id}/", headers=superadmin.headers)
    assert r.status_code == 409
    # Reactivation by an admin brings the person back.
    r = client.put(f"/api/users/{user.id}/", headers=admin.headers, json={"is_active": True})
    assert r.status_code == 200 and r.json()["is_active"] is True
    login(client, user.email)


def test_unknown_user_ids_are_404(client: httpx.Client, admin: User) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/api/users/{missing}/", headers=admin.headers).status_code == 404
    r = client.put(f"/api/users/{missing}/", headers=admin.headers, json={"name": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert client.get("/api/users/not-a-uuid/", headers=admin.headers).status_code == 404


def test_assign_trainer_moves_students_and_updates_loads(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    t1 = make_staff(server, client, Role.TRAINER)
    t2 = make_staff(server, client, Role.TRAINER)
    s = register_student(client)
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": s.id, "trainer_id": t1.id})
    assert r.status_code == 200 and r.json()["trainer_id"] == t1.id
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": s.id, "trainer_id": t2.id})
    assert r.status_code == 200 and r.json()["trainer_id"] == t2.id
    position = r.headers["X-Position"]
    loads = {}
    page = 1
    while True:
        body = client.get("/api/users/trainers/", headers={
            **s.headers, "X-Position": position}, params={"page": page, "page_size": 100}).json()
        loads.update({t["id"]: t for t in body["results"]})
        if not body["next"]:
            break
        page += 1
    assert loads[t1.id]["student_count"] == 0
    assert loads[t2.id]["student_count"] == 1 and loads[t2.id]["available"] == 19
    # The trainer sees their student; the other trainer does not.
    assert client.get(f"/api/users/{s.id}/", headers=t2.headers).status_code == 200
    assert client.get(f"/api/users/{s.id}/", headers=t1.headers).status_code == 404


def test_assignment_validates_both_sides(
    server: Server, client: httpx.Client, admin: User, trainer: User, student: User,
) -> None:
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": trainer.id, "trainer_id": trainer.id})
    assert r.status_code == 404
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": student.id, "trainer_id": student.id})
    assert r.status_code == 404
    r = client.post("/api/users/assign-trainer/", headers=student.headers,
                    json={"student_id": student.id, "trainer_id": trainer.id})
    assert r.status_code == 403
    r = client.post("/api/users/assign-trainer/", headers=trainer.headers,
                    json={"student_id": student.id, "trainer_id": trainer.id})
    assert r.status_code == 403


def test_forty_concurrent_assignments_fill_a_trainer_to_exactly_twenty(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    trainer = make_staff(server, client, Role.TRAINER)
    students = [register_student(client) for _ in range(40)]

    def assign(s: User) -> httpx.Response:
        with server.client() as c:
            return c.post("/api/users/assign-trainer/", headers=admin.headers,
                          json={"student_id": s.id, "trainer_id": trainer.id})

    with ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(pool.map(assign, students))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 20 + [409] * 20, codes
    refused = [r.json()["error"]["code"] for r in responses if r.status_code == 409]
    assert set(refused) == {"TRAINER_AT_CAPACITY"}
    assigned = {s.id for s, r in zip(students, responses, strict=True) if r.status_code == 200}
    position = max(int(r.headers.get("X-Position", 0)) for r in responses)
    r = client.get(f"/api/users/{trainer.id}/",
                   headers={**admin.headers, "X-Position": str(position)})
    assert r.json()["student_count"] == 20
    listed = client.get("/api/users/", headers=admin.headers,
                        params={"role": "student", "page_size": 100, "search": "student-"})
    assert listed.status_code == 200
    for s in students:
        detail = client.get(f"/api/users/{s.id}/", headers=admin.headers).json()
        assert (detail["trainer_id"] == trainer.id) == (s.id in assigned)
    # And the trainer can't be demoted while they have students.
    r = client.put(f"/api/users/{trainer.id}/", headers=admin.headers, json={"role": "student",
                                                                              "track": "DP"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "TRAINER_HAS_STUDENTS"
