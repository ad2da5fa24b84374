"""Typed configuration: ``config/gateway.yaml`` and ``config/partners.yaml``.

Source order, highest first: ``XINYI_*`` environment variables (nested keys
with ``__``, e.g. ``XINYI_CREDIT_SOURCE__ADAPTER``), then the YAML file, then
defaults. A bad file stops the start with :class:`ConfigError`, whose message
names the file, the key and what to do about it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.resources import shipped

__all__ = [
    "AuditSettings",
    "BaselineBenefit",
    "CommitmentSettings",
    "ConfigError",
    "CreditSourceSettings",
    "DeliverySettings",
    "EventKind",
    "FilingApproval",
    "OutboxSettings",
    "Partner",
    "PartnerKind",
    "RateLimit",
    "RetentionSettings",
    "Settings",
    "load_partners",
    "load_settings",
]

# `service` is any other benefit provider (a scenic spot for 信易游, a hospital
# for 信易医): a new scene needs a policy file and a partner, not a new kind.
PartnerKind = Literal[
    "bank", "service_hall", "library", "transit", "service", "platform", "auditor", "operator"
]
SCENE_CALLERS: frozenset[str] = frozenset({"bank", "service_hall", "library", "transit", "service"})


class ConfigError(Exception):
    """A configuration file or value is unusable; the message says where and how to fix it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Model):
    per_second: float = Field(50.0, gt=0)
    burst: int = Field(100, ge=1)


# Events the gateway emits (docs/events.md); a delivery names the ones it receives.
EventKind = Literal[
    "commitment_breached",
    "commitment_fulfilled",
    "token_revoked",
    "consent_revoked",
    "loan_response_overdue",
]


class DeliverySettings(_Model):
    """One way a partner receives events: an adapter of the ``xinyi_gateway.deliveries``
    group, the event kinds it takes and the adapter's options (a webhook's url and
    the *name* of its secret's variable or file — never the secret itself)."""

    adapter: str
    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    events: list[EventKind] = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.name or self.adapter


class BaselineBenefit(_Model):
    """What a partner already gives everyone in a scene (e.g. a library waiving every
    reader's deposit): a decision for it never offers less (gateway/trust/baseline.py)."""

    scene: str
    benefit: str
    params: dict[str, Any] = Field(default_factory=dict)
    basis: str = Field("", max_length=500)  # the partner's own rule, cited as the reason


class FilingApproval(_Model):
    """The 备案表's approval of a partner's use: 批准使用科室 and 批准使用分管领导, dated."""

    department: str = Field(min_length=1, max_length=64)  # 批准使用科室
    department_approved_on: dt.date
    leader: str = Field(min_length=1, max_length=64)  # 批准使用分管领导
    leader_approved_on: dt.date


class Partner(_Model):
    """A partner and its contract: what it may ask, for which purposes, how it signs in."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    kind: PartnerKind
    title: str = ""
    contract_id: str | None = None
    scenes: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(default_factory=list)
    # SHA-256 hex digests of development API keys; the keys themselves are never stored.
    api_key_sha256: list[str] = Field(default_factory=list)
    allow_api_keys: bool = False
    # Public keys for private_key_jwt client assertions: inline JWKS, or a JWKS
    # file (relative to the partners file). Private members are refused.
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    token_alg: Literal["EdDSA", "ES256"] = "EdDSA"  # noqa: S105 - an algorithm name
    # Partners of one sector share subject pseudonyms; by default every partner is its own.
    sector: str | None = None
    # Where this partner's events go (docs/events.md); none: it receives no events.
    deliveries: list[DeliverySettings] = Field(default_factory=list)
    baseline: list[BaselineBenefit] = Field(default_factory=list)
    # The contract's approval, copied into the monthly 备案 report.
    approval: FilingApproval | None = None

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("each entry is a lowercase SHA-256 hex digest (64 characters)")
        return value

    @model_validator(mode="after")
    def _contract_fits_kind(self) -> Partner:
        if self.kind not in SCENE_CALLERS and self.scenes:
            raise ValueError(f"a {self.kind} partner does not ask for decisions: remove 'scenes'")
        if self.api_key_sha256 and not self.allow_api_keys:
            raise ValueError("api_key_sha256 is set but allow_api_keys is false")
        keys = [d.key for d in self.deliveries]
        if len(keys) != len(set(keys)):
            raise ValueError("two deliveries share a name: give each its own 'name'")
        return self

    @property
    def contract(self) -> str:
        return self.contract_id or f"{self.id}:contract"

    @property
    def pseudonym_sector(self) -> str:
        return self.sector or self.id


class PartnersFile(_Model):
    partners: list[Partner]

    @model_validator(mode="after")
    def _unique(self) -> PartnersFile:
        ids = [p.id for p in self.partners]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"partner ids must be unique; repeated: {dupes}")
        return self


class AuditSettings(_Model):
    """The audit log's Merkle tree and signed checkpoints (docs/audit.md)."""

    # The checkpoints' origin line and signing key name; default: "<issuer host>/audit".
    origin: str | None = Field(None, pattern=r"^[^\s+]+$")
    # Sign a checkpoint once this many records are unsigned, or this long after the last one.
    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_seconds: float = Field(10.0, gt=0)


class RetentionSettings(_Model):
    """How long each kind of state stays hot (docs/audit.md "Retention")."""

    # Audit records older than this move to archive segments, with their decision
    # bodies and index entries; None keeps everything hot.
    audit_days: float | None = Field(None, ge=0)
    # Where segments go (default <state_dir>/archive). With Redis, shared storage.
    archive_dir: Path | None = None
    # Records per segment, at most (a segment ends at a checkpoint).
    segment_records: int = Field(100_000, ge=1)
    # Token records stay this long past their expiry (embedded; Redis expires them).
    token_grace_days: float = Field(7.0, ge=0)
    # Feedback older than this is dropped from the hot store (it is on the audit record).
    feedback_days: float = Field(400.0, ge=0)
    # How often the sweeper runs. Expired idempotency and replay entries go each sweep.
    sweep_seconds: float = Field(60.0, gt=0)


class CreditSourceSettings(_Model):
    adapter: str = "sqlite"
    options: dict[str, Any] = Field(default_factory=dict)


class OutboxSettings(_Model):
    """Event delivery: polling, leases, retries (docs/events.md)."""

    enabled: bool = True  # off: events are kept, nothing is sent (e.g. a CLI-only process)
    poll_seconds: float = Field(1.0, gt=0)
    batch: int = Field(50, ge=1, le=1000)
    # A claimed event is another replica's to retry once this passes unacknowledged.
    lease_seconds: float = Field(60.0, gt=0)
    max_attempts: int = Field(12, ge=1)  # then dead-lettered (`xinyi-gateway outbox retry`)
    backoff_seconds: float = Field(2.0, gt=0)  # first retry; doubles per attempt
    backoff_max_seconds: float = Field(3600.0, gt=0)


class CommitmentSettings(_Model):
    """信易批 commitments (docs/events.md)."""

    sweep_seconds: float = Field(60.0, gt=0)  # how often overdue commitments are breached
    # How long a breach withholds 容缺 when the granting decision names no period.
    breach_withhold_days: int = Field(365, ge=1, le=1825)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="XINYI_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    mode: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # The issuer id: tokens' iss and client assertions' aud. Defaults to the served URL.
    base_url: str | None = None
    state_dir: Path = Path(".xinyi-state")
    policy_dir: Path = Field(default_factory=lambda: shipped("policies"))
    partners_file: Path = Field(default_factory=lambda: shipped("config") / "partners.yaml")
    # A signed bundle replaces policy_dir; production accepts nothing else.
    policy_bundle: Path | None = None
    policy_keys: Path | None = None  # JWKS of the credit office's bundle-signing keys
    store: str | None = None
    credit_source: CreditSourceSettings = Field(default_factory=CreditSourceSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    timezone: str = "Asia/Shanghai"
    records_cache_seconds: float = Field(30.0, ge=0)
    # Record-derived facts of enterprises with open loan demands, kept warm in each
    # replica's memory for 名单推荐; credit events drop them at once (docs/loans.md).
    loan_facts_seconds: float = Field(3600.0, ge=0)
    # Refuse a reload whose new policy version takes a benefit from anyone (or worsens
    # one, or adds a constraint) unless it declares `change_reason:` (docs/prove.md).
    refuse_benefit_removal: bool = False
    # ~0.8 kB a subject; entries expire after records_cache_seconds (gateway/facts/cache.py).
    records_cache_size: int = Field(10_000, ge=0)
    consent_max_days: int = Field(366, ge=1, le=3660)
    status_list_ttl_seconds: int = Field(300, ge=10)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    commitments: CommitmentSettings = Field(default_factory=CommitmentSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Bearer token Prometheus sends to /metrics (scrape config `authorization`);
    # required in production, where metrics name partners and their volumes.
    metrics_token: SecretStr | None = Field(None, min_length=16)
    # Staff accounts for the pages at /ui (docs/ui.md); without the file nobody signs in.
    ui_users_file: Path | None = None
    ui_session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    ui_session_max_hours: int = Field(10, ge=1, le=24)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges file, environment and command line itself, in that
        # order of precedence, so it can say where a refused value came from.
        return (init_settings,)

    @model_validator(mode="after")
    def _production_needs_signed_policies(self) -> Settings:
        if self.mode == "production" and (self.policy_bundle is None or self.policy_keys is None):
            raise ValueError(
                "production mode loads only signed policy bundles: set policy_bundle and "
                "policy_keys (the credit office's JWKS)"
            )
        if self.mode == "production" and self.metrics_token is None:
            raise ValueError(
                "production mode serves /metrics only to a scraper with a bearer token: "
                "set metrics_token (e.g. XINYI_METRICS_TOKEN, 16+ characters)"
            )
        return self

    @property
    def issuer(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def audit_origin(self) -> str:
        if self.audit.origin:
            return self.audit.origin
        host = self.issuer.split("://", 1)[-1].split("/", 1)[0]
        return f"{host}/audit"

    @property
    def archive_dir(self) -> Path:
        return self.retention.archive_dir or self.state_dir / "archive"

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.state_dir / 'state.sqlite3').resolve()}"


def _explain(file: str, exc: ValidationError, origins: Mapping[str, str] | None = None) -> str:
    lines = [f"{file}: configuration refused"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        origin = (origins or {}).get(str(err["loc"][0]) if err["loc"] else "")
        where = f" (from {origin})" if origin else ""
        if err["type"] == "extra_forbidden":
            fix = "remove it or correct its spelling"
        elif err["type"] == "missing":
            fix = "add it"
        else:
            fix = "correct the value"
        lines.append(f"  key '{key}'{where}: {err['msg']} — fix: {fix}")
    return "\n".join(lines)


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}) — fix: check the path") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}) — fix: correct the syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys — fix: use key: value")
    return data


def load_settings(
    config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from, lowest first: defaults, a YAML file (paths in it are relative
    to the file), ``XINYI_*`` environment variables, then ``overrides`` (the
    command line)."""
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if config_file is not None:
        data = _read_mapping(config_file)
        base = config_file.resolve().parent
        for key in ("policy_dir", "partners_file", "policy_bundle", "policy_keys", "ui_users_file"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str(base / data[key])
        origins = dict.fromkeys(data, str(config_file))
    environment = EnvSettingsSource(Settings)()
    for key, value in environment.items():
        current = data.get(key)
        data[key] = (
            {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
        )
        origins[key] = f"environment variable XINYI_{key.upper()}"
    for key, value in (overrides or {}).items():
        data[key] = value
        origins[key] = "the command line"
    try:
        return Settings(**data)
    except ValidationError as exc:
        where = str(config_file) if config_file else "settings"
        raise ConfigError(_explain(where, exc, origins)) from exc


def load_partners(path: Path) -> list[Partner]:
    try:
        partners = PartnersFile.model_validate(_read_mapping(path)).partners
    except ValidationError as exc:
        raise ConfigError(_explain(str(path), exc)) from exc
    base = path.resolve().parent
    return [
        p.model_copy(update={"jwks_file": base / p.jwks_file})
        if p.jwks_file is not None and not p.jwks_file.is_absolute()
        else p
        for p in partners
    ]
