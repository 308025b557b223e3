"""What a process loads at start: an API process whose database is up to date loads
neither Alembic nor the Gemini SDK (each about 20 MB a process). The worker that
generates a quiz loads the SDK when it does (tests/integration/test_generators.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Mailbox, make_settings, new_database, settings_env

LOADED = """
import json, sys
from infrastructure.bootstrap import build
container = build()
print(json.dumps(sorted(m for m in ("alembic", "sqlalchemy", "google.genai")
                        if m in sys.modules)))
container.close()
"""


def _loaded_by_a_new_process() -> list[str]:
    started = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 0, started.stderr
    loaded: list[str] = json.loads(started.stdout.strip().splitlines()[-1])
    return loaded


def test_a_process_loads_alembic_only_to_migrate_and_the_gemini_sdk_only_to_generate(
        smtp: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with new_database() as url:
        settings_env(monkeypatch, make_settings(
            url, smtp[1], tmp_path, gemini_api_key="test-key",
            gemini_base_url="http://127.0.0.1:9"))
        # The first process migrates a new database: Alembic is needed, and loaded.
        assert "alembic" in _loaded_by_a_new_process()
        # The next ones find it up to date.
        assert _loaded_by_a_new_process() == []
