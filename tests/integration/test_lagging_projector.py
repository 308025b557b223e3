"""A stopped projector costs commands that wait for a read model their answer, not the API:
the wait holds no thread, and a model known to lag answers 202 at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from domain.roles import Role
from tests.conftest import (
    Mailbox,
    make_settings,
    make_staff,
    new_database,
    register_student,
    running_server,
)
from tests.integration.test_quizzes_api import generate, publish, start
from tests.integration.test_read_side_survives import projector

WAIT_SECONDS = 2.0


def test_a_stopped_projector_does_not_starve_commands_that_need_no_read_model(
        smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path, read_wait_seconds=WAIT_SECONDS,
                                 api_threads=4)
        with running_server(settings, background=False) as s, s.client() as c:
            s.background.start_relay()
            s.background.start_worker()
            with projector(s):
                trainer = make_staff(s, c, Role.TRAINER)
                quiz = publish(c, trainer, generate(c, trainer, 3))
                answering = register_student(c)
                starters = [register_student(c) for _ in range(12)]
                attempt = start(c, answering, quiz["id"]).json()
            # The projector is stopped now: no model moves.
            question = attempt["questions"][0]
            option = question["options"][0]["id"]

            saves: list[float] = []
            done = threading.Event()

            def save_answers() -> None:
                with s.client() as own:
                    while not done.is_set():
                        began = time.monotonic()
                        r = own.post(f"/api/quiz/attempts/{attempt['id']}/answer/",
                                     headers=answering.headers,
                                     json={"question_id": question["id"],
                                           "option_ids": [option]})
                        assert r.status_code == 200, r.text
                        saves.append(time.monotonic() - began)

            def start_one(student_headers: dict[str, str]) -> tuple[int, float]:
                with s.client() as own:
                    began = time.monotonic()
                    r = own.post(f"/api/quiz/quizzes/{quiz['id']}/start/",
                                 headers=student_headers)
                    return r.status_code, time.monotonic() - began

            saver = threading.Thread(target=save_answers)
            saver.start()
            try:
                with ThreadPoolExecutor(len(starters)) as pool:
                    results = list(pool.map(start_one, [u.headers for u in starters]))
            finally:
                done.set()
                saver.join(timeout=10)

            # More waiting commands than the API has threads; each is answered 202 once
            # its wait runs out, with the position to read at.
            assert [code for code, _ in results] == [202] * len(starters)
            assert max(took for _, took in results) < WAIT_SECONDS + 2
            # Meanwhile answer saves kept going, none held behind the waits.
            assert len(saves) >= 10, saves
            assert max(saves) < 1.0, max(saves)

            # The model is known to lag now: the next command does not wait it out.
            late = register_student(c)
            code, took = start_one(late.headers)
            assert code == 202 and took < 1.0, (code, took)

            # The projector comes back: the attempts are there, and answers are 201 again.
            with projector(s):
                head = s.container.store.recorder.max_notification_id() or 0
                deadline = time.monotonic() + 15
                while not s.container.attempts.has_reached(head):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                again = register_student(c)
                r = start(c, again, quiz["id"])
                assert r.status_code == 201, r.text
                listed = c.get("/api/quiz/attempts/", headers=starters[0].headers)
                assert listed.status_code == 200 and listed.json()["count"] == 1
