"""The embedded Redis is stopped by the process that started it, whatever is left over."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from infrastructure.embedded import start_embedded


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and b"zombie" not in Path(
        f"/proc/{pid}/status").read_bytes().lower()


def test_a_stale_registry_does_not_keep_the_embedded_redis_running(tmp_path: Path) -> None:
    # What an earlier, killed run leaves: the registry beside the file, naming a dead server.
    stale_pidfile = tmp_path / "gone.pid"
    stale_pidfile.write_text("999999")
    (tmp_path / "redis.db.settings").write_text(json.dumps({
        "pidfile": str(stale_pidfile), "unixsocket": str(tmp_path / "gone.sock")}))
    _, url, handles = start_embedded(tmp_path, need_postgres=False, need_redis=True)
    assert url is not None
    [redis] = handles
    registry = json.loads((tmp_path / "redis.db.settings").read_text())
    pid = int(Path(registry["pidfile"]).read_text().strip())
    assert redis.client.ping() and _alive(pid)
    redis.close()
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the embedded Redis kept running"
        time.sleep(0.05)
