"""Settings, read once from environment variables and an optional TOML file.

Adapter-level wiring (stdlib only). Precedence: keyword overrides > BOUNCEPROC_* environment >
config file (BOUNCEPROC_CONFIG or `bounceproc --config FILE`) > defaults.

With nothing set, bounceproc runs on the embedded default: a SQLite file in the data dir and tasks
run in-process (no broker). The data dir is per user, never relative to the current directory
(see `default_data_dir`): `$STATE_DIRECTORY` under systemd, `/var/lib/bounceproc` for a service
user, else `$XDG_DATA_HOME/bounceproc` (`~/.local/share/bounceproc`). Point it at real services with
`BOUNCEPROC_DATABASE_URL=postgresql+psycopg://user@host/db` and
`BOUNCEPROC_BROKER_URL=redis://host:6379/0`.

The config file uses the same names as the settings, e.g.

    database_url = "postgresql+psycopg://postgres@127.0.0.1/bounceproc"
    broker_url = "redis://127.0.0.1:6379/0"
    sink_accept = ["bounces.sender.example", "fbl@sender.example"]
    [policy]
    soft_bounce_threshold = 3
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


SERVICE_DATA_DIR = "/var/lib/bounceproc"


def default_data_dir(environ: dict[str, str] | None = None, uid: int | None = None) -> str:
    """Where the SQLite file, the pipe journal and the generated secret live when `data_dir` is
    not set: systemd's `$STATE_DIRECTORY` (a unit with `StateDirectory=bounceproc`); else
    /var/lib/bounceproc for a service user (a system account: uid 1-999, or nobody, or no usable
    home, as PowerMTA's pipe runs); else `$XDG_DATA_HOME/bounceproc`, by default
    `~/.local/share/bounceproc`."""
    env = os.environ if environ is None else environ
    uid = os.geteuid() if uid is None else uid
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return state
    home = env.get("HOME", "")
    if 0 < uid < 1000 or uid == 65534 or not home or home == "/" or home.startswith("/nonexistent"):
        return SERVICE_DATA_DIR
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path(home) / ".local" / "share"
    return str(base / "bounceproc")


@dataclass(frozen=True)
class Settings:
    data_dir: str = field(default_factory=default_data_dir)
    database_url: str = ""            # "" -> sqlite file in data_dir
    broker_url: str = ""              # "" -> embedded: tasks run in-process
    queue: str = "bounceproc"         # Celery queue name
    deployment_id: str = ""           # "" -> the database's identity; stamped on every task (deployment.py)
    auto_migrate: bool = False        # migrate on start (always done for the embedded SQLite file)
    secret_key: str = ""              # "" -> generated once into data_dir/secret_key
    # durable intake
    intake_batch_lines: int = 5000
    intake_batch_seconds: float = 1.0
    sweep_after_seconds: int = 60     # pending intake older than this is re-enqueued
    raw_retention_days: int = 30
    event_retention_days: int = 0     # delete events that occurred longer ago (0 = keep them all)
    # policy (domain/policy.py)
    soft_bounce_threshold: int = 3    # soft bounces on this many distinct days ...
    soft_bounce_window_days: int = 15  # ... within this many days -> suppress
    soft_suppression_days: int = 30   # how long a soft-threshold suppression lasts (0 = forever)
    rules_file: str = ""              # user classification rules, take precedence
    verp_separator: str = ""          # "" = "+" or PowerMTA's "-" (the first); else only this one
    verp_prefix: str = ""             # the return path's local part before the separator, if fixed
    # SMTP sink
    sink_listen: str = "127.0.0.1:2525"
    sink_accept: tuple[str, ...] = ()
    sink_hostname: str = ""
    sink_max_message_size: int = 10 * 1024 * 1024
    sink_max_recipients: int = 50
    sink_max_connections: int = 200
    sink_tls_cert: str = ""
    sink_tls_key: str = ""
    sink_max_connections_per_ip: int = 20
    # bundled sending core (docs/sending-core.md): PowerMTA-syntax config file; "" = not run by serve
    mta_config: str = ""
    sink_max_commands: int = 5000      # per connection, of each command outside a message (EHLO, VRFY, HELP, ...)
    sink_max_messages: int = 1_000_000  # messages (MAIL transactions) per connection; then 421, reconnect
    sink_timeout: int = 120            # idle seconds per SMTP command
    sink_task: str = "bounceproc.ingest_messages"  # batched (workers.sink_tasks); "bounceproc.ingest" = one row per transaction
    sink_proxy_protocol: bool = False  # expect a PROXY v1/v2 header (behind HAProxy / a load balancer)
    # HTTP API
    api_listen: str = "127.0.0.1:8025"
    public_url: str = ""              # base URL for unsubscribe links; "" -> http://<api_listen>
    webhook_allow: tuple[str, ...] = ()
    webhook_timeout_seconds: float = 15.0   # per delivery attempt; redirects are never followed
    webhook_lease_seconds: int = 60   # a delivery claimed by a sender that died is re-sent after this
    api_rate_limit_per_minute: int = 120000   # requests per API key per minute (0 = no limit)
    unsubscribe_per_ip_per_minute: int = 600  # one-click POSTs per client IP per minute (0 = no limit)
    # mailboxes read by `serve` / `bounceproc mailbox` (entrypoints/mailbox.py): [[mailboxes]] url = ...
    mailboxes: tuple = ()
    # ESP event webhooks (entrypoints/http/esp.py; docs/esp-webhooks.md): a provider is off until set
    esp_ses_topic_arns: tuple[str, ...] = ()   # SNS topics whose SES notifications are accepted
    esp_ses_cert_origins: tuple[str, ...] = ("https://sns.*.amazonaws.com",)  # SigningCertURL / SubscribeURL
    esp_ses_confirm_subscriptions: bool = True  # GET the SubscribeURL of a verified confirmation
    esp_sendgrid_public_key: str = ""           # the Event Webhook verification key (base64 DER or PEM)
    esp_mailgun_signing_key: str = ""           # Mailgun's HTTP webhook signing key
    esp_postmark_credentials: str = ""          # "user:password" of the webhook URL's basic auth
    esp_postmark_path_secret: str = ""          # or a secret path: POST /v1/ingest/postmark/<secret>
    esp_max_age_seconds: int = 600              # older (or future) signed timestamps are refused
    # operations view (docs/operations.md)
    dashboard_allow_cidrs: tuple[str, ...] = ()   # clients let in to /dashboard without a key
    alert_complaint_rate: float = 0.003      # complaint rate over a day, per provider / sending domain
    alert_complaint_min_delivered: int = 1000   # ... once this many were delivered
    alert_block_count: int = 10              # blocks today per provider, virtual MTA and IP
    alert_backlog_seconds: int = 300         # age of the oldest pending intake row
    alert_webhook_backlog_seconds: int = 900  # age of an endpoint's oldest pending delivery
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def embedded(self) -> bool:
        return not self.broker_url

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return "sqlite:///" + str(Path(self.data_dir).resolve() / "bounceproc.db")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or None on another database."""
        url = self.db_url
        if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
            return None
        return Path(url[len("sqlite:///"):].split("?")[0])

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith("postgresql")

    def secret(self) -> bytes:
        """The server secret (HMAC key for unsubscribe tokens); created on first use if unset."""
        if self.secret_key:
            return self.secret_key.encode()
        path = Path(self.data_dir) / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    default = _FIELDS[name].default
    if isinstance(default, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.replace(";", ",").split(",") if v.strip())
        return tuple(value)
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return str(value)


def _flatten(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in _FIELDS:
            out.update(_flatten(v))
        else:
            out[k.replace("-", "_")] = v
    return out


class ConfigError(ValueError):
    pass


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    path = config_file or os.environ.get("BOUNCEPROC_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for k, v in _flatten(raw).items():
            if k in _FIELDS and k != "extra":
                values[k] = _coerce(k, v)
            else:
                extra[k] = v
    for name in _FIELDS:
        env = os.environ.get("BOUNCEPROC_" + name.upper())
        if env is not None and name != "extra":
            values[name] = _coerce(name, env)
    for k, v in overrides.items():
        if k not in _FIELDS:
            raise ConfigError(f"unknown setting {k!r}")
        values[k] = _coerce(k, v) if k != "extra" else v
    values.setdefault("extra", extra)
    return Settings(**values)
