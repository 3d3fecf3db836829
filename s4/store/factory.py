"""The store the settings ask for, beneath the compressing layer."""

from __future__ import annotations

from s4.config import ConfigError, S4Config
from s4.store.base import ObjectStore


async def open_inner_store(config: S4Config) -> ObjectStore:
    """The embedded FilesystemStore, or an S3Store over ``config.upstream``; ConfigError when unusable.

    Imports are local: a gateway on the embedded store never loads aiobotocore.
    """
    if config.backend == "filesystem":
        from s4.store.filesystem import FilesystemStore

        return await FilesystemStore.open(config.data_dir)
    if config.backend == "s3":
        if not config.upstream.endpoint:
            raise ConfigError("--backend s3 needs an upstream endpoint (--upstream-endpoint or S4_UPSTREAM_ENDPOINT)")
        if config.upstream.ca_bundle is not None and not config.upstream.ca_bundle.is_file():
            raise ConfigError(f"upstream ca_bundle {config.upstream.ca_bundle} is not a file")
        from s4.store.s3.store import S3Store

        return await S3Store.open(config.upstream)
    raise ConfigError(f"unknown backend {config.backend!r}")
