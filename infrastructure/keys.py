"""Key material: the configured value, or one made once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr


def _kept(path: Path, make: Callable[[], bytes]) -> bytes:
    """The key at `path`, made first if there is none; readable by this user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first; read theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
    return path.read_bytes().strip()


def secret(configured: SecretStr | None, data_dir: Path, name: str) -> str:
    """A signing or hashing secret (JWT, pseudonyms)."""
    if configured is not None:
        return configured.get_secret_value()
    return _kept(data_dir / name, lambda: secrets.token_urlsafe(48).encode()).decode()


def fernet_key(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The key that encrypts stored credentials."""
    if configured is not None:
        return configured.get_secret_value().encode()
    return _kept(data_dir / "credentials-key", Fernet.generate_key)
