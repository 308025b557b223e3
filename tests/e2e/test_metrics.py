"""`serve --workers N`: a scrape of /metrics adds up every worker's counts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REDIS_URL, SECRETS_ENV, free_port, new_database, wait_until_ready


def _livez_count(text: str) -> float:
    return sum(float(value) for value in re.findall(
        r'apranova_http_requests_total\{method="GET",route="/livez",status="200"\} (\S+)',
        text))


def test_several_workers_report_one_sum(tmp_path: Path) -> None:
    port = free_port()
    with new_database() as url:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("APRANOVA_", "PROMETHEUS_"))}
        env.update({**SECRETS_ENV, "APRANOVA_DATABASE_URL": url, "APRANOVA_REDIS_URL": REDIS_URL,
                    "APRANOVA_DATA_DIR": str(tmp_path / "data"),
                    "APRANOVA_REDIS_NAMESPACE": f"metrics-{port}"})
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "interfaces.cli", "serve", "--port", str(port),
                 "--workers", "2", "--no-background"],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base, log, process)
            for _ in range(40):  # a connection each, so both workers take some
                assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
            files = {p.name.rsplit("_", 1)[-1] for p in
                     (tmp_path / "data" / "metrics").glob("counter_*.db")}
            assert len(files) >= 2, files  # more than one process counted requests
            for _ in range(3):
                assert _livez_count(httpx.get(f"{base}/metrics", timeout=5).text) == 40
            assert "apranova_relay_position" in httpx.get(f"{base}/metrics", timeout=5).text
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
