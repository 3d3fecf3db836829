"""Settings for ``s4 serve``: defaults < YAML file (``--config``) < ``S4_*`` environment < flags.

One pydantic model validates all three sources the same way, so a typo in the YAML
file or a bad port in the environment fails at start with the field's name.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CREDENTIALS_FILE = "credentials.json"
MiB = 1024 * 1024
GiB = 1024 * MiB


CANNED_POLICIES = ("admin", "readwrite", "readonly", "writeonly")
"""Identity policies by name (s4.server.access.canned): admin does everything; readwrite creates buckets and
has full control of the ones it owns; readonly reads every bucket; writeonly uploads to every bucket."""
ADMIN = "admin"
"""The name and the policy of the environment's key pair and of the generated one."""


class CredentialConfig(BaseModel):
    """One access key of an identity: who signs with it (``name``) and what it may do (``policy``).

    Several keys may share a name (a key rotated without downtime): they are the same identity, owner of the
    same buckets. The policy is checked for its shape here, and parsed by the server (s4.server.access), which
    refuses to start, or a SIGHUP to reload, with a policy it cannot read.
    """

    model_config = ConfigDict(extra="forbid")

    access_key_id: str = Field(min_length=3, max_length=128)
    secret_access_key: str = Field(min_length=8, max_length=256)
    name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+=,.@_-]+$")
    """The identity: its principal is ``arn:aws:iam:::user/NAME``, and it is the owner ID of what it creates.
    Default: the access key id."""
    policy: str | dict[str, Any] = "readwrite"
    """A canned policy (CANNED_POLICIES) or an IAM policy document (Version, Statement) without Principal."""

    @property
    def identity(self) -> str:
        return self.name or self.access_key_id

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str) and value not in CANNED_POLICIES:
            raise ValueError(f"policy is one of {', '.join(CANNED_POLICIES)} or an IAM policy document")
        if isinstance(value, dict) and "Statement" not in value:
            raise ValueError("an IAM policy document has a Statement")
        return value


class FramesConfig(BaseModel):
    """Frame sizes by object size (bytes): see s4.codec.policy.FramePolicy."""

    model_config = ConfigDict(extra="forbid")

    single_frame_max: int = Field(default=1024**2, ge=1)
    medium_frame: int = Field(default=4 * 1024**2, ge=64 * 1024, le=1024**3)
    medium_max: int = Field(default=100 * 1024**2, ge=1)
    large_frame: int = Field(default=16 * 1024**2, ge=64 * 1024, le=1024**3)
    unknown_frame: int = Field(default=4 * 1024**2, ge=64 * 1024, le=1024**3)


class GpuConfig(BaseModel):
    """The GPU worker pool (see s4.codec.gpu.setup): whether to use a GPU, and how to batch for it.

    ``gpu: auto`` (or on / off) alone is accepted as short for ``gpu: {mode: ...}``.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "on", "off"] = "auto"
    """auto: use a GPU when nvCOMP finds one; on: refuse to start without one; off: never use one."""
    device: int = Field(default=0, ge=0)
    streams: int = Field(default=2, ge=1, le=16)
    """Worker threads, one CUDA stream each: two or more overlap copies and kernels of consecutive batches."""
    batch_bytes: int = Field(default=64 * MiB, ge=64 * 1024, le=4 * GiB)
    """A batch closes when it holds this many original bytes..."""
    batch_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    """...or this long after its first frame arrived, whichever comes first."""
    queue_bytes: int = Field(default=256 * MiB, ge=64 * 1024)
    """Frames waiting for the GPU, at most; submitters wait beyond that (back-pressure)."""
    min_bytes: int | None = Field(default=1 * MiB, ge=0)
    """Frames of cpu-zstd objects at least this large run as nvcomp-zstd on the GPU; null: never."""
    prefer_columnar: bool = False
    """Frames that look like integer columns go to nvcomp-bitcomp (readable only where a GPU is)."""
    dietgpu_library: Path | None = None
    """The DietGPU shared library (registers torch.ops.dietgpu) for the dietgpu-ans codec."""

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        # YAML reads a bare on/off as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class UpstreamConfig(BaseModel):
    """The S3 endpoint that holds the data when ``backend: s3`` (see s4.store.s3.store.S3Store)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = None
    """``http(s)://host:port`` of the upstream S3 (AWS, MinIO, Ceph, SeaweedFS...)."""
    region: str = "us-east-1"
    access_key_id: str | None = None
    """With ``secret_access_key``; both unset: the standard AWS credential chain (env, profile, IMDS)."""
    secret_access_key: str | None = Field(default=None, repr=False)
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    connect_timeout: float = Field(default=5, gt=0)
    read_timeout: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts per request for requests that can be repeated; a streamed body is sent once."""
    max_pool_connections: int = Field(default=32, ge=1)
    bucket: str | None = None
    """Map every client bucket into this one upstream bucket, under ``key_prefix``."""
    key_prefix: str = "{bucket}/"
    multipart_threshold: int = Field(default=9 * MiB, ge=0, le=5 * GiB)
    """Bodies up to this size go up in one PutObject; larger ones as an upstream multipart upload."""
    part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=5 * GiB)
    document_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    """How long a bucket's documents (owner, policy, ACL, public access block, CORS...) read from the upstream
    are used without reading them again; a change made through another gateway or worker takes effect in
    this one within that time (this one's own changes at once). 0: every request reads them."""

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the upstream endpoint is a URL: http://host:port or https://host")
        return value.rstrip("/") if value else None

    @field_validator("key_prefix")
    @classmethod
    def _check_key_prefix(cls, value: str) -> str:
        # "{bucket}/" keeps every bucket's keys apart: with "{bucket}-", bucket "a" would see "a-b"'s keys.
        rest = value.replace("{bucket}/", "", 1)
        if value.count("{bucket}/") != 1 or "{" in rest or "}" in rest:
            raise ValueError('key_prefix must contain "{bucket}/" exactly once and no other braces')
        if value.startswith(".s4"):
            raise ValueError("key_prefix must not start with .s4 (reserved for the gateway)")
        return value

    @model_validator(mode="after")
    def _keys_go_together(self) -> UpstreamConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("upstream access_key_id and secret_access_key go together (or leave both unset)")
        return self


class LimitsConfig(BaseModel):
    """Bounds on what one client can hold: time without progress, header bytes, requests at once.

    Enforced in s4.server.limits; each refusal is the S3 error AWS gives for it.
    """

    model_config = ConfigDict(extra="forbid")

    idle_timeout: float = Field(default=60, gt=0, le=3600)
    """Seconds a request body may go without a byte, or a response without being read, before
    the request fails (RequestTimeout) or the connection is cut. Progress resets it: slow but
    steady uploads and downloads of any size still work."""
    keepalive_timeout: float = Field(default=75, gt=0, le=3600)
    """Seconds an idle connection is kept, which also bounds how long a client may take to send a
    request's headers (slowloris). Keep it above the idle timeout of any proxy in front (60 s
    for ALB and nginx), so that the proxy, not S4, closes idle connections."""
    max_header_bytes: int = Field(default=8 * 1024, ge=1024, le=1024 * 1024)
    """Header section plus query string; beyond: RequestHeaderSectionTooLarge (AWS allows 8 KiB)."""
    max_concurrent_requests: int = Field(default=1024, ge=1)
    """S3 requests served at once; beyond: 503 SlowDown at once, not an unbounded queue.
    /health, /ready and /metrics are never refused."""
    max_connections: int = Field(default=2048, ge=1)
    """Client connections open at once, idle keep-alive ones included (each holds a file descriptor);
    beyond: the new connection gets 503 SlowDown and is closed. Keep it under the process's open-file
    limit (ulimit -n), leaving room for the store's own files and connections."""
    min_body_rate: int = Field(default=1024, ge=0)
    """Bytes per second a request body must average over each ``min_body_rate_window`` seconds spent
    waiting for it; below: 400 RequestTimeout, nothing stored. Bounds a client that trickles a byte
    now and then (never idle long enough for ``idle_timeout``) holding a request slot forever.
    0 turns it off. Time the gateway itself spends (compressing, storing) does not count."""
    min_body_rate_window: float = Field(default=30, gt=0, le=3600)
    """Seconds of waiting for body bytes over which ``min_body_rate`` is averaged."""


class SweepConfig(BaseModel):
    """The sweep of the gateway's own leftovers (s4.store.compressing.sweep): inner multipart uploads
    of a Complete or a PUT that died (SIGKILL, power loss), staging of finished uploads, orphan sidecars.

    It runs at start, then every ``interval`` seconds, in every gateway: safe with several gateways
    over one store, since only what is older than ``min_age`` and idle that long is touched.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: float = Field(default=3600, gt=0)
    """Seconds between sweeps. Each walks every bucket's listing once (1000 keys a request over S3)."""
    min_age: float = Field(default=3600, ge=0)
    """Seconds a leftover must have been idle before it is removed: longer than any Complete or PUT
    runs between two of its parts, so another gateway's operation in progress is never swept."""


class LifecycleConfig(BaseModel):
    """Buckets' lifecycle rules carried out by the gateway (s4.store.lifecycle): Expiration of objects
    on the embedded store, and AbortIncompleteMultipartUpload on both stores (an upstream S3 expires
    objects itself: it is handed the rules)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: float = Field(default=3600, gt=0)
    """Seconds between runs. Each lists, in every bucket with an Expiration rule, the keys under its prefix."""
    day_seconds: float = Field(default=86400, gt=0)
    """How long a lifecycle day lasts: S3's day (with its rounding to midnight UTC). Tests shorten it,
    as Ceph's ``rgw_lc_debug_interval`` does."""


class LedgerConfig(BaseModel):
    """The savings ledger (s4.store.compressing.ledger): per bucket, original and stored bytes, kept in the store."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    flush_interval: float = Field(default=1.0, gt=0, le=3600)
    """Seconds a change may wait in this process before it is written to the store (and at shutdown)."""
    metrics_interval: float = Field(default=60, gt=0)
    """Seconds between reads of the ledgers into the ``s4_ledger_*`` gauges."""
    metrics_max_buckets: int = Field(default=100, ge=0, le=10_000)
    """The gauges' bucket label is bounded: only this many buckets, the largest by stored bytes."""


class DictionaryBindingConfig(BaseModel):
    """Small objects PUT under ``prefix`` of ``bucket`` are stored as cpu-zstd-dict with the dictionary
    ``.s4dict/<id>`` of that bucket (``s4 train-dict`` trains and stores it, and prints this entry)."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=1)
    prefix: str = ""
    id: str = Field(pattern=r"^[0-9a-f]{16}$")
    max_size: int = Field(default=64 * 1024, ge=1, le=16 * MiB)
    """Objects up to this many bytes (by their Content-Length; a body of unknown length is not bound)."""


class S4Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8014, ge=0, le=65535)
    data_dir: Path = Path("./s4-data")
    domain: str | None = None
    """Enables virtual-hosted-style addressing: ``bucket.DOMAIN``."""
    region: str = "us-east-1"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    credentials: list[CredentialConfig] = Field(default_factory=list)
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    access_log: str | None = "-"
    """Where the per-request access log goes: "-" for stdout, a file path, or null for none."""
    workers: int | None = Field(default=None, ge=1, le=1024)
    """Gateway processes sharing the port (``s4 serve --workers``); default one per core, 1 for one process."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Also serve /metrics, /health and /ready on this port (they are always on the S3 port too)."""
    metrics_bucket_label: bool = False
    """Label request metrics by bucket (off: bucket counts can be unbounded)."""
    codec: str = "cpu-zstd"
    """Codec for compressible objects (see ``s4 codecs``)."""
    zstd_level: int = Field(default=3, ge=-7, le=22)
    dispatcher: Literal["sampling", "always"] = "sampling"
    frames: FramesConfig = Field(default_factory=FramesConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    backend: Literal["filesystem", "s3"] = "filesystem"
    """Where objects are stored: the embedded store in ``data_dir``, or an upstream S3 (``upstream``)."""
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    dictionaries: list[DictionaryBindingConfig] = Field(default_factory=list)

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_shorthand(cls, value: Any) -> Any:
        """``gpu: auto | on | off`` alone sets the mode (YAML reads a bare on/off as a boolean)."""
        if isinstance(value, bool | str):
            return {"mode": value}
        return value

    @field_validator("domain")
    @classmethod
    def _strip_domain(cls, value: str | None) -> str | None:
        return value.strip().strip(".").lower() or None if value else None


ENV_FIELDS = {
    "S4_HOST": "host",
    "S4_PORT": "port",
    "S4_DATA_DIR": "data_dir",
    "S4_DOMAIN": "domain",
    "S4_REGION": "region",
    "S4_TLS_CERT": "tls_cert",
    "S4_TLS_KEY": "tls_key",
    "S4_LOG_LEVEL": "log_level",
    "S4_LOG_FORMAT": "log_format",
    "S4_ACCESS_LOG": "access_log",
    "S4_METRICS_PORT": "metrics_port",
    "S4_WORKERS": "workers",
    "S4_CODEC": "codec",
    "S4_ZSTD_LEVEL": "zstd_level",
    "S4_DISPATCHER": "dispatcher",
    "S4_GPU": "gpu.mode",
    "S4_GPU_DIETGPU_LIBRARY": "gpu.dietgpu_library",
    "S4_BACKEND": "backend",
    "S4_UPSTREAM_ENDPOINT": "upstream.endpoint",
    "S4_UPSTREAM_REGION": "upstream.region",
    "S4_UPSTREAM_ACCESS_KEY_ID": "upstream.access_key_id",
    "S4_UPSTREAM_SECRET_ACCESS_KEY": "upstream.secret_access_key",
    "S4_SWEEP_ENABLED": "sweep.enabled",
    "S4_SWEEP_INTERVAL": "sweep.interval",
    "S4_SWEEP_MIN_AGE": "sweep.min_age",
    "S4_LIFECYCLE_ENABLED": "lifecycle.enabled",
    "S4_LEDGER_ENABLED": "ledger.enabled",
    "S4_LEDGER_FLUSH_INTERVAL": "ledger.flush_interval",
    "S4_LEDGER_METRICS_INTERVAL": "ledger.metrics_interval",
    "S4_LIFECYCLE_INTERVAL": "lifecycle.interval",
    "S4_LIFECYCLE_DAY_SECONDS": "lifecycle.day_seconds",
    "S4_LIMITS_IDLE_TIMEOUT": "limits.idle_timeout",
    "S4_LIMITS_KEEPALIVE_TIMEOUT": "limits.keepalive_timeout",
    "S4_LIMITS_MAX_HEADER_BYTES": "limits.max_header_bytes",
    "S4_LIMITS_MAX_CONCURRENT_REQUESTS": "limits.max_concurrent_requests",
    "S4_LIMITS_MAX_CONNECTIONS": "limits.max_connections",
    "S4_LIMITS_MIN_BODY_RATE": "limits.min_body_rate",
    "S4_LIMITS_MIN_BODY_RATE_WINDOW": "limits.min_body_rate_window",
}
"""Environment variable to setting; a dotted name is a setting of a section (``upstream.region``)."""
SECTIONS = ("upstream", "limits", "gpu")
"""Sections whose settings a flat override may name as ``<section>_<setting>`` (``upstream_region``)."""


class ConfigError(Exception):
    """A setting that cannot be used, with the reason in words."""


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> S4Config:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a mapping of settings")
        values.update(loaded)
    for name, field in ENV_FIELDS.items():
        if env.get(name):
            _assign(values, field, env[name])
    key, secret = env.get("S4_ACCESS_KEY_ID"), env.get("S4_SECRET_ACCESS_KEY")
    if key and secret:
        pair = {"access_key_id": key, "secret_access_key": secret, "name": ADMIN, "policy": ADMIN}
        values["credentials"] = [*values.get("credentials", []), pair]
    elif key or secret:
        raise ConfigError("set both S4_ACCESS_KEY_ID and S4_SECRET_ACCESS_KEY, or neither")
    for name, value in (overrides or {}).items():
        if value is not None:
            section, _, setting = name.partition("_")
            _assign(values, f"{section}.{setting}" if section in SECTIONS and setting else name, value)
    try:
        config = S4Config.model_validate(values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    return config


def _assign(values: dict[str, Any], field: str, value: Any) -> None:
    """Set a setting, a dotted one inside its section, keeping the section's other settings from the file."""
    section, _, setting = field.rpartition(".")
    if not section:
        values[field] = value
        return
    current = values.get(section)
    if current is None:
        current = values[section] = {}
    if not isinstance(current, dict):
        raise ConfigError(f"{section} must be a mapping of settings")
    current[setting] = value


def ensure_credentials(config: S4Config) -> tuple[list[CredentialConfig], bool]:
    """The configured credentials, or the data dir's generated pair (created on first start).

    Returns the credentials and whether they were generated just now; a generated pair is the ``admin``
    identity, as the environment's pair is (it is the one key of a gateway nobody configured). The file is
    written with mode 0600 before the secret is in it, so it is never readable by others.
    """
    if config.credentials:
        return list(config.credentials), False
    path = config.data_dir / CREDENTIALS_FILE
    if path.exists():
        try:
            if path.stat().st_mode & 0o077:  # copied or restored with others' access: private again
                path.chmod(0o600)
            data = json.loads(path.read_text())
            return [CredentialConfig.model_validate({**data, "name": ADMIN, "policy": ADMIN})], False
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read generated credentials {path}: {exc}") from None
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the embedded store keeps it 0700
    pair = CredentialConfig(
        access_key_id="S4" + secrets.token_hex(9).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        name=ADMIN,
        policy=ADMIN,
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key_id": pair.access_key_id, "secret_access_key": pair.secret_access_key}, f)
    return [pair], True
