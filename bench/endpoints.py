"""Server CPU per request, endpoint by endpoint, against the bare SELECT app: where a
request's time goes, before and after a change.

    python -m bench.endpoints [--seconds 3] [--rounds 3] [--concurrency 8] [--only WORD...]

Starts `apranova serve` and the bare SELECT app (as bench.load does) on a fresh
database, seeds a trainer, a quiz and a student per concurrent caller (each with a
submission in the trainer's review queue), then runs closed loops over the
endpoints in alternating rounds and prints, as medians, requests/s, server CPU
milliseconds per request and the ratio of each to the SELECT baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from bench.http1 import Client
from bench.load import (
    PASSWORD,
    bearer,
    bench_stack,
    cpu_seconds,
    expect,
    login,
    make_quiz,
    servers,
    submit_project,
)
from domain.roles import Role

Call = tuple[str, str, dict[str, str], Any]  # method, url, headers, JSON body


async def closed_loop(client: Client, calls: list[Call], seconds: float, pid: int
                      ) -> tuple[float, float, int]:
    """One worker per call, each repeating its call; returns requests/s, server CPU ms
    per request, and errors."""
    done, errors = 0, 0

    async def worker(call: Call, deadline: float) -> None:
        nonlocal done, errors
        method, url, headers, body = call
        while time.perf_counter() < deadline:
            r = await client.request(method, url, headers=headers, json=body)
            done += 1
            errors += r.status_code >= 300

    cpu, started = cpu_seconds(pid), time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(call, deadline) for call in calls))
    wall, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return done / wall, 1000 * used / max(done, 1), errors


async def measure(args: argparse.Namespace, api_url: str, select_url: str, api_pid: int,
                  select_pid: int, container: Any) -> list[tuple[str, float, float, int]]:
    async with Client(api_url) as client, Client(select_url) as base:
        admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        container.accounts.create_administrator(admin_email, "Admin", PASSWORD, Role.ADMIN)
        admin = bearer(await login(client, admin_email))
        trainer_email = f"trainer-{uuid.uuid4().hex[:8]}@example.com"
        expect(await client.post("/api/users/", headers=admin, json={
            "email": trainer_email, "password": PASSWORD, "name": "Trainer",
            "role": "trainer"}), 201, 202)
        trainer_login = await login(client, trainer_email)
        trainer = bearer(trainer_login)
        quiz = await make_quiz(client, trainer, 0)
        # A student per worker: concurrent saves to one attempt would measure retries.
        students, answers, attempts = [], [], []
        for _ in range(args.concurrency):
            email = f"s-{uuid.uuid4().hex[:8]}@example.com"
            expect(await client.post("/api/auth/register/", json={
                "email": email, "password": PASSWORD, "name": "Student", "track": "DP"}), 201)
            student = bearer(await login(client, email))
            # Each student's submission waits in the trainer's review queue.
            await submit_project(client, admin, trainer_login["user"]["id"], email)
            attempt = expect(await client.post(f"/api/quiz/quizzes/{quiz}/start/",
                                               headers=student), 200, 201)
            question = attempt["questions"][0]
            students.append(student)
            attempts.append(("GET", f"/api/quiz/attempts/{attempt['id']}/", student, None))
            answers.append(("POST", f"/api/quiz/attempts/{attempt['id']}/answer/", student,
                            {"question_id": question["id"],
                             "option_ids": [question["options"][0]["id"]]}))

        def each(method: str, url: str, headers: list[dict[str, str]]) -> list[Call]:
            return [(method, url, h, None) for h in headers]

        trainers = [trainer] * args.concurrency
        cases: list[tuple[str, Client, list[Call], int]] = [
            ("SELECT baseline GET /kv/{id}", base, each("GET", "/kv/7", [{}] * len(students)),
             select_pid),
            ("GET /livez (no auth, no query)", client, each("GET", "/livez", [{}] * len(
                students)), api_pid),
            ("GET /api/users/profile/", client, each("GET", "/api/users/profile/", students),
             api_pid),
            ("GET /api/quiz/quizzes/ (student)", client,
             each("GET", "/api/quiz/quizzes/", students), api_pid),
            ("GET /api/quiz/quizzes/{id}/ (student)", client,
             each("GET", f"/api/quiz/quizzes/{quiz}/", students), api_pid),
            ("POST /api/quiz/quizzes/{id}/start/ (resumes)", client,
             [("POST", f"/api/quiz/quizzes/{quiz}/start/", h, None) for h in students],
             api_pid),
            ("GET /api/quiz/attempts/{id}/", client, attempts, api_pid),
            ("GET /api/curriculum/progress/me/", client,
             each("GET", "/api/curriculum/progress/me/", students), api_pid),
            ("GET /api/quiz/quizzes/{id}/statistics/", client,
             each("GET", f"/api/quiz/quizzes/{quiz}/statistics/", trainers), api_pid),
            (f"GET /api/curriculum/review-queue/ ({args.concurrency} waiting)", client,
             each("GET", "/api/curriculum/review-queue/", trainers), api_pid),
            ("POST /api/quiz/attempts/{id}/answer/", client, answers, api_pid),
        ]
        # The baseline always runs: every figure is a ratio to it.
        cases = [case for i, case in enumerate(cases)
                 if i == 0 or any(word in case[0] for word in args.only)]
        # Rounds alternate over the endpoints so that the machine's drifts touch all alike.
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, *_ in cases}
        for _ in range(args.rounds):
            for name, via, calls, pid in cases:
                results[name].append(await closed_loop(via, calls, args.seconds, pid))
        rows = []
        for name, measured in results.items():
            rows.append((name, statistics.median(m[0] for m in measured),
                         statistics.median(m[1] for m in measured), sum(m[2] for m in measured)))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", nargs="*", default=[""], metavar="WORD",
                        help="only endpoints whose name contains one of these (to profile)")
    parser.add_argument("--read-cache-megabytes", type=int, default=32,
                        help="the API's answer cache (0: off, to measure without it)")
    args = parser.parse_args()
    with bench_stack("endpoints", pool_size=20,
                     read_cache_megabytes=args.read_cache_megabytes) as stack, \
            servers(stack, 1) as up:
        rows = asyncio.run(measure(args, up.api_url, up.select_url, up.api.pid, up.select.pid,
                                   stack.container))
    base_rps, base_cpu = rows[0][1], rows[0][2]
    print(f"{'endpoint':<44}{'req/s':>8}{'x base':>8}{'cpu ms/req':>12}{'x base':>8}{'errors':>8}")
    for name, rps, cpu_ms, errors in rows:
        print(f"{name:<44}{rps:>8.0f}{rps / base_rps:>8.2f}{cpu_ms:>12.2f}"
              f"{cpu_ms / base_cpu:>8.2f}{errors:>8}")


if __name__ == "__main__":
    main()
