"""Settings: one TOML file, plus secrets from the environment or a secrets directory.

Secrets never live in the TOML file: a setting ending in `_secret` names a secret, which is read
from the environment variable `MAILBOT_SECRET_<NAME>` (upper case, `-` and `.` become `_`) or from
the file `<secrets_dir>/<name>`. Every problem is reported as one line naming the file and the key,
because the people who edit this file are operators, not Python programmers.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from mailbot.settings_due import DueSettings
from mailbot.settings_oauth import Auth, OAuthSettings, auth_problem

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "MAILBOT_CONFIG"
SECRET_ENV_PREFIX = "MAILBOT_SECRET_"  # noqa: S105 (a name prefix, not a secret)
_FORBIDDEN_SECRET_KEYS = {"password", "token", "secret", "client_secret", "access_token", "refresh_token"}


class SettingsError(Exception):
    """A configuration problem, already phrased as the one line an operator should read."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _tcp_port(value: int) -> int:
    # 0 used to mean "the default port" silently; a typo there should be loud, not quietly 993.
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535 (leave it out for the default)")
    return value


Port = Annotated[int, AfterValidator(_tcp_port)]


class ImapSettings(_Model):
    host: str
    port: Port | None = None
    username: str
    auth: Auth = "password"
    password_secret: str | None = Field(default=None, description="name of the secret holding the password")
    oauth: OAuthSettings | None = None
    security: Literal["tls", "starttls", "plain"] = "tls"
    ca_file: str | None = None
    folder: str = "INBOX"
    processed_action: Literal["flag", "move"] = "flag"
    move_to: str | None = None
    sent_folder: str | None = "Sent"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    # IMAP IDLE: answer new mail at once where the server offers it; the scheduled poll stays as a net.
    idle: bool = True


class MaildirSettings(_Model):
    path: str


class MailboxSettings(_Model):
    address: str
    service: str
    source: Literal["imap", "maildir"] = "imap"
    poll_interval_seconds: Annotated[int, Field(ge=5)] = 60
    enabled: bool = True
    imap: ImapSettings | None = None
    maildir: MaildirSettings | None = None

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be an e-mail address")
        return value.strip().lower()


class SmtpSettings(_Model):
    host: str
    port: Port | None = None
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str | None = None
    auth: Auth = "password"
    password_secret: str | None = None
    oauth: OAuthSettings | None = None
    ca_file: str | None = None
    timeout: float = 30.0


class OutboxSettings(_Model):
    folder: str = "outbox"  # relative to data_dir; used when [smtp] is absent
    sent_copies: Literal["imap", "folder", "none"] = "folder"
    max_attempts: Annotated[int, Field(ge=1)] = 8
    backoff_seconds: Annotated[float, Field(ge=0)] = 30.0
    drain_interval_seconds: Annotated[int, Field(ge=1)] = 15


class DatabaseSettings(_Model):
    url: str = ""  # empty: SQLite file mailbot.db in data_dir
    password_secret: str | None = None  # the database password, added to the URL when it is used


class HealthSettings(_Model):
    """What `mailbot status` counts as unhealthy beyond outright failures."""

    missed_polls: Annotated[int, Field(ge=1)] = 3  # no completed poll for this many intervals: stalled
    max_pending_reply_age_seconds: Annotated[int, Field(ge=1)] = 900  # older unsent replies: SMTP down


class CasesSettings(_Model):
    close_resolved_after_days: Annotated[int, Field(ge=1)] = 7  # a resolved case closes itself then


def _listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError('must be "HOST:PORT", for example "127.0.0.1:9464"')
    return value


class ObservabilitySettings(_Model):
    """The worker's /metrics, /healthz and /readyz; off unless `listen` is set."""

    listen: Annotated[str, AfterValidator(_listen_address)] | None = None


class LoggingSettings(_Model):
    """`[logging]`: the same as the top-level log_level / log_format keys, which it overrides."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None
    format: Literal["text", "json"] | None = None


class LimitsSettings(_Model):
    max_message_bytes: Annotated[int, Field(ge=1024)] = 25 * 1024 * 1024
    max_batch_bytes: Annotated[int, Field(ge=1024 * 1024)] = 50 * 1024 * 1024
    message_budget_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    replies_per_sender_per_hour: Annotated[int, Field(ge=0)] = 5
    replies_per_sender_per_day: Annotated[int, Field(ge=0)] = 20
    replies_total_per_hour: Annotated[int, Field(ge=0)] = 5000
    # Attachments read for order numbers (PDF, Outlook .msg, text, CSV); see core/attachments.py.
    attachment_max_bytes: Annotated[int, Field(ge=0)] = 5 * 1024 * 1024  # larger ones are skipped
    attachment_max_pages: Annotated[int, Field(ge=1, le=1000)] = 10  # of each PDF, from the first
    attachment_max_chars: Annotated[int, Field(ge=100, le=1_000_000)] = 20_000  # text kept per file
    attachment_seconds: Annotated[float, Field(gt=0, le=600)] = 2.0  # all PDF/.msg files of one mail

    @field_validator("attachment_seconds")
    @classmethod
    def _attachments_within_budget(cls, value: float, info: ValidationInfo) -> float:
        budget = info.data.get("message_budget_seconds")
        if budget is not None and value >= budget:
            raise ValueError(
                f"must be less than message_budget_seconds ({budget:g}): reading attachments is part of "
                "reading the mail"
            )
        return value


class IdentitySettings(_Model):
    message_id_domain: str = "mailbot.example.test"
    case_tag: str = "Case"
    from_name: str = "Trade Assurance Support"


class _FileSettings(_Model):
    data_dir: str = "var"
    rules_dir: str = "rules"
    templates_dir: str = "templates"
    secrets_dir: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    identity: IdentitySettings = IdentitySettings()
    database: DatabaseSettings = DatabaseSettings()
    mailboxes: dict[str, MailboxSettings]
    smtp: SmtpSettings | None = None
    outbox: OutboxSettings = OutboxSettings()
    limits: LimitsSettings = LimitsSettings()
    health: HealthSettings = HealthSettings()
    cases: CasesSettings = field(default_factory=CasesSettings)
    observability: ObservabilitySettings = ObservabilitySettings()
    logging: LoggingSettings = LoggingSettings()
    due: DueSettings = DueSettings()


@dataclass(frozen=True)
class Settings:
    """Validated settings with every path made absolute and every secret resolved."""

    source: Path
    data_dir: Path
    rules_dir: Path
    templates_dir: Path
    log_level: str
    log_format: str
    identity: IdentitySettings
    database_url_without_password: str
    database_password_secret: str | None
    mailboxes: dict[str, MailboxSettings]
    smtp: SmtpSettings | None
    outbox: OutboxSettings
    limits: LimitsSettings
    health: HealthSettings
    secrets: _Secrets
    observability: ObservabilitySettings
    cases: CasesSettings = field(default_factory=CasesSettings)
    due: DueSettings = field(default_factory=DueSettings)

    @property
    def database_url(self) -> str:
        """The URL to connect with; the password (if any) comes from its secret, never from the file.

        Resolved on each use rather than stored, so no repr or log of the settings can carry it.
        """
        if self.database_password_secret is None:
            return self.database_url_without_password
        from sqlalchemy.engine import make_url

        password = self.secrets.get(
            self.database_password_secret, key=f"{self.source}: database.password_secret"
        )
        url = make_url(self.database_url_without_password).set(password=password)
        return url.render_as_string(hide_password=False)

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / self.outbox.folder

    @property
    def sent_dir(self) -> Path:
        return self.data_dir / "sent"

    def maildir_path(self, mailbox: str) -> Path:
        box = self.mailboxes[mailbox]
        assert box.maildir is not None
        return _resolve(self.source.parent, box.maildir.path)


class _Secrets:
    """Resolves secrets lazily; never part of any repr or log line."""

    def __init__(self, secrets_dir: Path | None) -> None:
        self._dir = secrets_dir

    def __repr__(self) -> str:
        return "<secrets hidden>"

    @property
    def directory(self) -> Path | None:
        return self._dir

    def put(self, name: str, value: str) -> Path:
        """Store a secret mailbot obtained itself (a refresh token after consent), readable by us only."""
        if self._dir is None:
            raise SettingsError("secrets_dir: not set; it is needed to store a secret mailbot obtains itself")
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._dir / name
        temporary = self._dir / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        temporary.replace(target)
        return target

    @staticmethod
    def env_name(name: str) -> str:
        return SECRET_ENV_PREFIX + name.upper().replace("-", "_").replace(".", "_")

    def get(self, name: str, *, key: str) -> str:
        env = self.env_name(name)
        value = os.environ.get(env)
        if value:
            return value
        if self._dir is not None:
            path = self._dir / name
            if path.is_file():
                return path.read_text(encoding="utf-8").strip()
        where = f" or the file {self._dir / name}" if self._dir is not None else ""
        raise SettingsError(f"{key}: secret {name!r} is missing: set the environment variable {env}{where}")


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _location(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in {"function-after"}))


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] | None = _FileSettings
    for part in loc[:-1]:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            if model is _FileSettings and loc[0] == "mailboxes":
                model = MailboxSettings
            continue
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        model = next((c for c in candidates if issubclass(c, BaseModel)), None)
    return list(model.model_fields) if model is not None else []


def _explain(error: ValidationError, path: Path) -> str:
    # An unknown key usually explains a "missing" one next to it (a typo), so report it first.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    key = _location(loc)
    if first["type"] == "extra_forbidden":
        name = str(loc[-1])
        if name in _FORBIDDEN_SECRET_KEYS:
            return (
                f"{path}: {key}: secrets are never read from the config file; "
                f'use {name}_secret = "<name>" and set {SECRET_ENV_PREFIX}<NAME> in the environment'
            )
        close = difflib.get_close_matches(name, _known_keys(loc), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{path}: {key}: unknown setting{hint}"
    if first["type"] == "missing":
        return f"{path}: {key}: required setting is missing"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{path}: {key}: {message} (got {first.get('input')!r})"


def find_config(explicit: str | None) -> Path:
    """`--config FILE`, else ./config.toml, else $MAILBOT_CONFIG."""
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG)
    if default.exists():
        return default
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return default


def load_settings(path: Path) -> Settings:
    """Read and validate the TOML file; raise SettingsError with one clear line on any problem.

    Secrets are not resolved here: staff and supervisor commands never connect to a mail server, so
    they must run without the IMAP/SMTP passwords. Commands that connect call `check_secrets`.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: config file not found (copy config.example.toml to config.toml, "
            f"or pass --config FILE, or set {CONFIG_ENV})"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the config file: {exc.strerror}") from None
    text = _decode(data, path)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    try:
        raw = _FileSettings.model_validate(parsed)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, path)) from None
    return _finish(raw, path)


def _decode(data: bytes, path: Path) -> str:
    """The file as text, or one line saying what the file really is (an editor's UTF-16, a binary)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\x00" in data[:4096] and _looks_utf16(data)):
        raise SettingsError(f"{path}: the config file is UTF-16 text; save it as UTF-8 in your editor")
    if b"\x00" in data:
        raise SettingsError(f"{path}: the config file is binary, not TOML text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError(
            f"{path}: line {line}: the config file is not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def _looks_utf16(data: bytes) -> bool:
    # UTF-16 without a byte-order mark: ASCII text with every other byte NUL.
    sample = data[:4096]
    return len(sample) >= 4 and (
        sample[1::2].count(0) > len(sample) // 3 or sample[0::2].count(0) > len(sample) // 3
    )


def _finish(raw: _FileSettings, path: Path) -> Settings:
    base = path.resolve().parent
    if not raw.mailboxes:
        raise SettingsError(f"{path}: mailboxes: at least one mailbox must be configured")
    for name, box in raw.mailboxes.items():
        key = f"mailboxes.{name}"
        if box.source == "imap":
            if box.imap is None:
                raise SettingsError(f'{path}: {key}.imap: required when source = "imap"')
            if box.imap.security == "plain" and not is_loopback(box.imap.host):
                raise SettingsError(
                    f'{path}: {key}.imap.security: "plain" is only allowed for a loopback host, '
                    f"not {box.imap.host!r}"
                )
            if box.imap.processed_action == "move" and not box.imap.move_to:
                raise SettingsError(f'{path}: {key}.imap.move_to: required when processed_action = "move"')
            _check_auth(box.imap.auth, box.imap.password_secret, box.imap.oauth, f"{path}: {key}.imap")
            smtp_oauth = raw.smtp is not None and raw.smtp.auth == "xoauth2"
            if name == "smtp" and box.imap.auth == "xoauth2" and smtp_oauth:
                raise SettingsError(f'{path}: {key}: "smtp" names the [smtp] OAuth2 account; rename it')
        if box.source == "maildir" and box.maildir is None:
            raise SettingsError(f'{path}: {key}.maildir: required when source = "maildir"')
    _check_distinct_mailboxes(raw, path)
    if raw.smtp is not None and raw.smtp.security == "plain" and not is_loopback(raw.smtp.host):
        raise SettingsError(f'{path}: smtp.security: "plain" is only allowed for a loopback host')
    if raw.smtp is not None and raw.smtp.auth == "xoauth2":
        if not raw.smtp.username:
            raise SettingsError(f'{path}: smtp.username: required when smtp.auth = "xoauth2"')
        _check_auth("xoauth2", None, raw.smtp.oauth, f"{path}: smtp")
    elif raw.smtp is not None and raw.smtp.username and not raw.smtp.password_secret:
        raise SettingsError(f"{path}: smtp.password_secret: required when smtp.username is set")
    data_dir = _resolve(base, raw.data_dir)
    url = raw.database.url or f"sqlite:///{data_dir / 'mailbot.db'}"
    check_database_url(url, path)
    secrets = _Secrets(_resolve(base, raw.secrets_dir) if raw.secrets_dir else None)
    return Settings(
        source=path.resolve(),
        data_dir=data_dir,
        rules_dir=_resolve(base, raw.rules_dir),
        templates_dir=_resolve(base, raw.templates_dir),
        log_level=raw.logging.level or raw.log_level,
        log_format=raw.logging.format or raw.log_format,
        identity=raw.identity,
        database_url_without_password=url,
        database_password_secret=raw.database.password_secret,
        mailboxes={name: _absolute_paths(box, base) for name, box in raw.mailboxes.items()},
        smtp=_absolute_smtp(raw.smtp, base),
        outbox=raw.outbox,
        limits=raw.limits,
        health=raw.health,
        cases=raw.cases,
        secrets=secrets,
        observability=raw.observability,
        due=raw.due,
    )


def _absolute_paths(box: MailboxSettings, base: Path) -> MailboxSettings:
    """`ca_file` is relative to the config file, like every other path in it (not to the cwd)."""
    if box.imap is None:
        return box
    update: dict[str, object] = {}
    if box.imap.ca_file:
        update["ca_file"] = str(_resolve(base, box.imap.ca_file))
    if box.imap.oauth is not None and box.imap.oauth.ca_file:
        update["oauth"] = _absolute_oauth(box.imap.oauth, base)
    if not update:
        return box
    return box.model_copy(update={"imap": box.imap.model_copy(update=update)})


def _absolute_oauth(oauth: OAuthSettings, base: Path) -> OAuthSettings:
    if not oauth.ca_file:
        return oauth
    return oauth.model_copy(update={"ca_file": str(_resolve(base, oauth.ca_file))})


def _check_auth(auth: str, password_secret: str | None, oauth: OAuthSettings | None, key: str) -> None:
    problem = auth_problem(auth, password_secret, oauth, key)
    if problem is not None:
        raise SettingsError(problem)


def _absolute_smtp(smtp: SmtpSettings | None, base: Path) -> SmtpSettings | None:
    if smtp is None:
        return None
    update: dict[str, object] = {}
    if smtp.ca_file:
        update["ca_file"] = str(_resolve(base, smtp.ca_file))
    if smtp.oauth is not None and smtp.oauth.ca_file:
        update["oauth"] = _absolute_oauth(smtp.oauth, base)
    return smtp.model_copy(update=update) if update else smtp


def _check_distinct_mailboxes(raw: _FileSettings, path: Path) -> None:
    """Two mailboxes on one address or one IMAP folder would answer and acknowledge each other's mail."""
    addresses: dict[str, str] = {}
    logins: dict[tuple[str, str, str], str] = {}
    for name, box in raw.mailboxes.items():
        other = addresses.setdefault(box.address, name)
        if other != name:
            raise SettingsError(
                f"{path}: mailboxes.{name}.address: {box.address} is already the address of "
                f"mailboxes.{other}; each mailbox needs its own address"
            )
        if box.source != "imap" or box.imap is None:
            continue
        login = (box.imap.host.lower(), box.imap.username.lower(), box.imap.folder)
        other = logins.setdefault(login, name)
        if other != name:
            raise SettingsError(
                f"{path}: mailboxes.{name}.imap.username: {box.imap.username} on {box.imap.host} "
                f"(folder {box.imap.folder}) is already the IMAP login of mailboxes.{other}; "
                "each mailbox needs its own account or folder"
            )


_SUPPORTED_DATABASES = "postgresql+psycopg://user@host/dbname or sqlite:////absolute/path/mailbot.db"


def check_database_url(url: str, path: Path) -> None:
    """Refuse a database URL that cannot work, naming `database.url`, before anything connects.

    The URL is never echoed whole: it may carry a password, which is refused here too, because
    secrets never belong in the config file.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    key = f"{path}: database.url"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"{key}: not a database URL; expected {_SUPPORTED_DATABASES}") from None
    if parsed.password is not None:
        raise SettingsError(
            f"{key}: contains a password, and secrets never belong in the config file; remove it and set "
            f'database.password_secret = "db-password" (read from {SECRET_ENV_PREFIX}DB_PASSWORD '
            "or <secrets_dir>/db-password)"
        )
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise SettingsError(f"{key}: unknown database {parsed.drivername!r}; expected {_SUPPORTED_DATABASES}")
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise SettingsError(
            f"{key}: unknown database driver {parsed.drivername!r}; expected {_SUPPORTED_DATABASES}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = parsed.get_driver_name()
        hint = (
            "install it with: pip install 'mailbot[postgres]'"
            if driver == "psycopg"
            else "mailbot uses psycopg 3: write postgresql+psycopg://… and pip install 'mailbot[postgres]'"
        )
        raise SettingsError(f"{key}: the database driver {driver!r} is not installed; {hint}") from None


def check_secrets(settings: Settings) -> None:
    """Fail at start-up, not at the first poll, when a secret a connecting command needs is missing."""
    for name, box in settings.mailboxes.items():
        if box.enabled and box.source == "imap" and box.imap is not None:
            key = f"{settings.source}: mailboxes.{name}.imap"
            if box.imap.auth == "xoauth2" and box.imap.oauth is not None:
                _check_oauth_secrets(settings, box.imap.oauth, key, name)
            elif box.imap.password_secret is not None:
                settings.secrets.get(box.imap.password_secret, key=f"{key}.password_secret")
    smtp = settings.smtp
    if smtp is not None and smtp.auth == "xoauth2" and smtp.oauth is not None:
        _check_oauth_secrets(settings, smtp.oauth, f"{settings.source}: smtp", "smtp")
    elif smtp is not None and smtp.password_secret:
        settings.secrets.get(smtp.password_secret, key=f"{settings.source}: smtp.password_secret")
    if settings.database_password_secret is not None:
        settings.secrets.get(
            settings.database_password_secret, key=f"{settings.source}: database.password_secret"
        )


def _check_oauth_secrets(settings: Settings, oauth: OAuthSettings, key: str, account: str) -> None:
    for name in ("client_secret_secret", "service_account_key_secret"):
        secret = getattr(oauth, name)
        if secret:
            settings.secrets.get(secret, key=f"{key}.oauth.{name}")
    if oauth.refresh_token_secret:
        try:
            settings.secrets.get(oauth.refresh_token_secret, key=f"{key}.oauth.refresh_token_secret")
        except SettingsError as exc:
            raise SettingsError(f"{exc} (or run `mailbot oauth login {account}` to store one)") from None
