"""Uploaded files on the local filesystem, addressed by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from application.ports import StoredFile
from domain.errors import Invalid, TooLarge

HEAD_BYTES = 8192
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, temp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"Files are limited to {max_bytes} bytes",
                                       code="FILE_TOO_LARGE", limit=max_bytes)
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise Invalid("The file is empty", code="EMPTY_FILE")
            sha = digest.hexdigest()
            final = self._path(sha)
            final.parent.mkdir(exist_ok=True)
            # Same content, same name: a repeat upload simply lands on the existing file.
            os.replace(temp_name, final)
            return StoredFile(sha, size, head)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def path(self, sha256: str) -> Path | None:
        if not SHA256.match(sha256):
            return None
        path = self._path(sha256)
        return path if path.exists() else None

    def delete(self, sha256: str) -> None:
        """Remove a file (an erased person's upload no one else holds)."""
        if (path := self.path(sha256)) is not None:
            path.unlink(missing_ok=True)
