"""What a deployment needs: keys from the environment, and a compose file whose commands
and settings are the ones this package has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infrastructure.settings import Settings
from interfaces.cli import app
from tests.conftest import SECRETS_ENV

ROOT = Path(__file__).parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run this package's image."""
    return {name: service for name, service in compose["services"].items()
            if service.get("build") or "apranova" in str(service.get("image", ""))}


@pytest.mark.parametrize("missing", sorted(SECRETS_ENV))
def test_a_deployment_without_a_key_refuses_to_start_and_names_it(missing: str,
                                                                  tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APRANOVA_")}
    env.update({**SECRETS_ENV, "APRANOVA_DATABASE_URL": "postgresql://nowhere.invalid/x",
                "APRANOVA_DATA_DIR": str(tmp_path)})
    del env[missing]
    done = subprocess.run([sys.executable, "-m", "interfaces.cli", "worker"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert missing in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir()), "no key was generated into the data directory"


def test_every_compose_command_is_a_valid_invocation() -> None:
    services = _ours(_compose())
    assert {"api", "worker", "relay", "projector", "migrate"} <= set(services)
    runner = CliRunner()
    for name, service in services.items():
        command = service["command"]
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (name, command, result.output)


def test_every_setting_compose_sets_is_known_and_every_key_is_given() -> None:
    compose = _compose()
    known = {f"APRANOVA_{name.upper()}" for name in Settings.model_fields}
    for name, service in _ours(compose).items():
        environment = service["environment"]
        assert set(environment) <= known, (name, set(environment) - known)
        assert set(SECRETS_ENV) <= set(environment), name
    for name in ("api", "worker", "relay", "projector"):
        assert compose["services"][name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}
