"""The `apranova` command line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.roles import Role
from infrastructure.settings import MissingSecrets, Settings

app = typer.Typer(help="ApraNova: event-sourced LMS backend.", no_args_is_help=True,
                  add_completion=False)
projections_app = typer.Typer(help="Read models built from the event log.",
                              no_args_is_help=True)
app.add_typer(projections_app, name="projections")
events_app = typer.Typer(help="The event stream, for analysts.", no_args_is_help=True)
app.add_typer(events_app, name="events")
privacy_app = typer.Typer(help="Personal data in the log.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")

# Touched every second while healthy; container healthchecks look at its age.
HEARTBEAT = Path(os.environ.get("APRANOVA_HEARTBEAT_FILE", "/tmp/apranova-heartbeat"))

DataDir = Annotated[Path | None, typer.Option(
    help="Where the embedded PostgreSQL and Redis keep their data (APRANOVA_DATA_DIR).")]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    settings = Settings()
    changes = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        changes["data_dir"] = data_dir
    return settings.model_copy(update=changes)


def _logging(verbose: bool = False) -> None:
    from infrastructure.logs import configure

    configure(Settings().log_format, logging.DEBUG if verbose else logging.INFO)


def _wait_for_signal(healthy: Callable[[], bool], heartbeat: Path) -> None:
    """Block until SIGINT/SIGTERM, touching `heartbeat` while the components are healthy."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        if healthy():
            heartbeat.touch()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (APRANOVA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (APRANOVA_PORT).")] = None,
    data_dir: DataDir = None,
    background: Annotated[bool, typer.Option(
        help="Also run projections, relay and a worker in this process.")] = True,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="API worker processes. One process uses at most one core "
        "for Python; with several, the log's followers stay in this process.")] = 1,
) -> None:
    """Serve the API. With no database or Redis configured, starts embedded ones."""
    import uvicorn

    from infrastructure.background import Background
    from infrastructure.bootstrap import build
    from interfaces.http.app import create_app, server_options

    _logging()
    settings = _settings(data_dir, host=host, port=port)
    container = build(settings)
    followers = Background(container)
    try:
        if background:
            followers.start_all()
        url = f"http://{settings.host}:{settings.port}"
        typer.echo(f"ApraNova is serving at {url} (API docs: {url}/docs)")
        if workers > 1:
            # Each worker builds its own container from the environment: the same
            # services (embedded ones included) and the same data directory.
            resolved = container.settings
            os.environ.update({"APRANOVA_DATABASE_URL": str(resolved.database_url),
                               "APRANOVA_REDIS_URL": str(resolved.redis_url),
                               "APRANOVA_DATA_DIR": str(resolved.data_dir)})
            # Each worker keeps its metrics in a file here; /metrics adds them all up.
            metrics = resolved.data_dir / "metrics"
            shutil.rmtree(metrics, ignore_errors=True)
            metrics.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics.resolve())
            uvicorn.run("interfaces.http.app:create_app_in_worker", factory=True,
                        workers=workers, host=settings.host, port=settings.port,
                        log_level="info", access_log=False, log_config=None,
                        **server_options(resolved))
            return
        # uvicorn's loggers go to the root handler (_logging); the access lines are ours.
        config = uvicorn.Config(create_app(container), host=settings.host, port=settings.port,
                                log_level="info", access_log=False, log_config=None,
                                **server_options(container.settings))
        _graceful_server_class()(config).run()
    finally:
        followers.stop()
        container.close()


def _graceful_server_class() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Shuts down on SIGINT/SIGTERM and returns, instead of re-raising the signal.

        Returning lets the caller close the container (and stop an embedded PostgreSQL)
        and exit 0, which is what process supervisors expect after a requested stop.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit)
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer


def _run_until_signal(start: str, data_dir: Path | None) -> None:
    from infrastructure.background import Background
    from infrastructure.bootstrap import build

    _logging()
    container = build(_settings(data_dir))
    background = Background(container)
    try:
        getattr(background, start)()
        typer.echo(f"{start.removeprefix('start_')} running; Ctrl-C to stop")
        _wait_for_signal(background.healthy, HEARTBEAT)
    finally:
        background.stop()
        container.close()


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run process-manager workers (dramatiq on Redis) and the workspace supervisor."""
    _run_until_signal("start_worker", data_dir)


@app.command()
def relay(data_dir: DataDir = None) -> None:
    """Follow the event log and enqueue process-manager messages."""
    _run_until_signal("start_relay", data_dir)


@app.command("failed-policies")
def failed_policies(data_dir: DataDir = None,
                    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100) -> None:
    """Process-manager work given up on after its retries: policy, event and reason.

    Exits with status 1 when there is any.
    """
    from infrastructure.bootstrap import build
    from infrastructure.messaging import failures

    container = build(_settings(data_dir))
    try:
        found = failures(container.pool, limit)
    finally:
        container.close()
    for f in found:
        typer.echo(f"{f['processed_at']} {f['policy']} at position {f['position']} "
                   f"({f['topic']}): {f['error']}")
    typer.echo(f"{len(found)} failed")
    if found:
        raise typer.Exit(1)


@projections_app.command("run")
def projections_run(data_dir: DataDir = None) -> None:
    """Keep every read model up to date with the event log."""
    _run_until_signal("start_projections", data_dir)


def _model_names() -> str:
    from projections.models import PROJECTIONS

    return ", ".join(p.name for p in PROJECTIONS)


ProjectionName = Annotated[str | None, typer.Argument(
    help=f"One read model ({_model_names()}); all when omitted.")]


def _cannot_reach_head(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


def _chosen(name: str | None) -> list[Any]:
    from projections.models import PROJECTIONS

    chosen = [p for p in PROJECTIONS if name in (None, p.name)]
    if not chosen:
        raise typer.BadParameter(f"no read model called {name!r}", param_hint="NAME")
    return chosen


@projections_app.command("rebuild")
def projections_rebuild(name: ProjectionName = None, data_dir: DataDir = None) -> None:
    """Replay the log into fresh read models and put them in place of the live ones."""
    from infrastructure.bootstrap import build
    from projections.rebuild import rebuild

    chosen = _chosen(name)
    container = build(_settings(data_dir))
    try:
        for projection in chosen:
            started = time.perf_counter()
            try:
                count = rebuild(container.store, container.env, container.views[projection],
                                projection)
            except RuntimeError as error:
                raise _cannot_reach_head(error) from None
            elapsed = time.perf_counter() - started
            typer.echo(f"{projection.name}: replayed {count} events in {elapsed:.2f}s")
    finally:
        container.close()


@projections_app.command("verify")
def projections_verify(name: ProjectionName = None, data_dir: DataDir = None) -> None:
    """Rebuild into shadow tables and report rows that differ from the live read models.

    Exits with status 1 when any row differs, or when a model cannot reach the head of
    the log (it stopped at an event, or no projector is running).
    """
    from infrastructure.bootstrap import build
    from projections.rebuild import verify

    chosen = _chosen(name)
    container = build(_settings(data_dir))
    different = False
    try:
        for projection in chosen:
            try:
                differences = verify(container.store, container.env,
                                     container.views[projection], projection)
            except RuntimeError as error:
                raise _cannot_reach_head(error) from None
            if not differences:
                typer.echo(f"{projection.name}: identical")
            for d in differences:
                different = True
                typer.echo(f"{projection.name}.{d.table}: {len(d.only_in_live)} row(s) only in "
                           f"the live model, {len(d.only_in_rebuild)} only in the rebuild")
                for row in d.only_in_live:
                    typer.echo(f"  live:    {json.dumps(row, default=str)}")
                for row in d.only_in_rebuild:
                    typer.echo(f"  rebuild: {json.dumps(row, default=str)}")
    finally:
        container.close()
    if different:
        raise typer.Exit(1)


@projections_app.command("status")
def projections_status(data_dir: DataDir = None) -> None:
    """Each read model's position, the followed events it has yet to apply, and, for a
    model stopped at an event, that event's position and type and the error.

    Exits with status 1 when any model is stopped.
    """
    from infrastructure.bootstrap import build
    from projections.stalls import statuses

    container = build(_settings(data_dir))
    try:
        head = container.store.recorder.max_notification_id() or 0
        with container.pool.connection() as conn:
            found = statuses(conn, container.named_views)
    finally:
        container.close()
    typer.echo(f"log head: {head}")
    for status in found:
        line = f"{status.model}: position {status.position}, {status.pending} to apply"
        if status.stall:
            stall = status.stall
            line += (f"; STOPPED at position {stall.position} ({stall.topic}) after "
                     f"{stall.attempts} attempt(s) since {stall.since}: {stall.error}")
        typer.echo(line)
    if any(s.stall for s in found):
        raise typer.Exit(1)


@events_app.command("export")
def events_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    after: Annotated[int, typer.Option(help="Export events after this position.")] = 0,
    format: Annotated[str, typer.Option(help="jsonl or parquet.")] = "jsonl",
    data_dir: DataDir = None,
) -> None:
    """Write the (pseudonymised) event stream as CloudEvents, for DuckDB and friends."""
    from infrastructure.bootstrap import build
    from interfaces.exports import export_events

    if format not in ("jsonl", "parquet"):
        raise typer.BadParameter("format must be jsonl or parquet", param_hint="--format")
    container = build(_settings(data_dir))
    try:
        count, last = export_events(container.stream, output, after, format)
    finally:
        container.close()
    typer.echo(f"wrote {count} events to {output} (last position {last})")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database's tables up to date (every process also does this at start,
    one at a time); for a deployment's one-shot step before the others start."""
    from infrastructure.bootstrap import build

    _logging()
    build(_settings(data_dir)).close()
    typer.echo("database up to date")


@privacy_app.command("migrate")
def privacy_migrate(data_dir: DataDir = None) -> None:
    """Seal the personal fields a log written before sealing holds in plaintext: the log is
    copied into its sealed form, checked and swapped in, in one transaction. Stop every
    apranova process first; run `apranova projections verify` after."""
    from infrastructure.bootstrap import build
    from infrastructure.privacy import seal_log

    container = build(_settings(data_dir))
    try:
        store = container.store
        done = seal_log(container.pool, store.recorder.events_table_name,  # type: ignore[attr-defined]
                        store.mapper.transcoder, container.cipher)
        typer.echo(f"{done.events} events copied, {done.fields_sealed} personal fields sealed")
    finally:
        container.close()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, help="Email to log in with.")],
    name: Annotated[str, typer.Option(prompt=True, help="Display name.")],
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        envvar="APRANOVA_ADMIN_PASSWORD", help="Password (prompted if not given).")],
    role: Annotated[str, typer.Option(help="superadmin or admin.")] = Role.SUPERADMIN.value,
    data_dir: DataDir = None,
) -> None:
    """Create a superadmin (or, with --role admin, an administrator): the first one has
    to come from here."""
    from domain.errors import DomainError
    from infrastructure.bootstrap import build

    if role not in (Role.SUPERADMIN.value, Role.ADMIN.value):
        raise typer.BadParameter("role must be superadmin or admin", param_hint="--role")
    # The same rules as the API's, so the account made here can log in there.
    from pydantic import TypeAdapter, ValidationError

    from interfaces.http.schemas import Email, Name, NewPassword

    for value, kind, hint in ((email, Email, "--email"), (name, Name, "--name"),
                              (password, NewPassword, "--password")):
        try:
            TypeAdapter(kind).validate_python(value)
        except ValidationError as error:
            raise typer.BadParameter(error.errors()[0]["msg"], param_hint=hint) from None
    container = build(_settings(data_dir))
    try:
        result = container.accounts.create_administrator(email, name, password, Role(role))
    except DomainError as error:
        typer.echo(f"error: {error.message} ({error.code})", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(f"created {role} {email} with id {result.account_id}")


def main() -> None:
    try:
        app()
    except MissingSecrets as missing:
        typer.echo(f"error: {missing}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
