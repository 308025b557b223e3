"""The installed package, not the checkout: a wheel built from the source tree, installed
into a fresh virtualenv, serving from an unrelated directory and generating a quiz offline
(what the image does, without the image)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    SECRETS_ENV,
    free_port,
    new_database,
    unique_email,
    wait_until_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

SOURCE = Path(__file__).resolve().parents[2]


def test_the_wheel_serves_from_anywhere_and_generates_offline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(wheels), str(SOURCE)], check=True, cwd=tmp_path, timeout=300)
    [wheel] = wheels.glob("apranova-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The dependencies come from this environment (installing them again would only
    # test the registry); the package itself only from the wheel.
    [target] = (venv / "lib").glob("python3*/site-packages")
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, timeout=120)
    python, apranova = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m",
                                                  "interfaces.cli"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import infrastructure; print("
                            "infrastructure.__file__)"], cwd=elsewhere, check=True,
                           capture_output=True, text=True).stdout
    assert where.startswith(str(target)), where

    with new_database() as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APRANOVA_")}
        env.update({"APRANOVA_DATABASE_URL": database_url, "APRANOVA_REDIS_URL": REDIS_URL,
                    **SECRETS_ENV, "APRANOVA_DATA_DIR": str(tmp_path / "d"),
                    "APRANOVA_REDIS_NAMESPACE": f"wheel-{free_port()}",
                    "APRANOVA_ADMIN_PASSWORD": PASSWORD})
        email = unique_email("root")
        made = subprocess.run([*apranova, "create-admin", "--email", email, "--name", "Root"],
                              cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=120)
        assert made.returncode == 0, made.stderr
        port = free_port()
        log = (tmp_path / "serve.log").open("w")
        served = subprocess.Popen([*apranova, "serve", "--port", str(port)], cwd=elsewhere,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, tmp_path / "serve.log", served, timeout=90)
            with httpx.Client(base_url=url, timeout=30) as c:
                access = c.post("/api/auth/login/", json={
                    "email": email, "password": PASSWORD}).json()["access"]
                # A superadmin must turn on two-factor sign-in before anything else.
                auth = {"Authorization": f"Bearer {access}"}
                refused = c.get("/api/curriculum/tracks/", headers=auth)
                assert refused.json()["error"]["code"] == "MFA_ENROLMENT_REQUIRED"
                secret = c.post("/api/auth/mfa/enrol/", headers=auth).json()["secret"]
                enrolled = c.post("/api/auth/mfa/enrol/confirm/", headers=auth,
                                  json={"code": pyotp.TOTP(secret).now()})
                assert enrolled.status_code == 200, enrolled.text
                auth = {"Authorization": f"Bearer {enrolled.json()['access']}"}
                tracks = c.get("/api/curriculum/tracks/", headers=auth).json()
                assert {t["code"] for t in tracks} == {"DP", "FSD"}
                r = c.post("/api/quiz/quizzes/generate/", headers=auth, json={
                    "title": "SQL", "prompt": "SQL joins", "num_questions": 3, "track": "DP"})
                assert r.status_code == 202, r.text
                deadline = time.monotonic() + 30
                at = {**auth, "X-Position": r.headers["X-Position"]}
                while (quiz := c.get(f"/api/quiz/quizzes/{r.json()['id']}/",
                                     headers=at).json())["status"] == "generating":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                assert quiz["status"] == "draft" and len(quiz["questions"]) == 3
        finally:
            served.terminate()
            served.wait(timeout=30)
