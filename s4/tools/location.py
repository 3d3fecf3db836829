"""Where an offline tool reads or writes: local paths, or ``s3://bucket[/prefix]`` over an S3 endpoint.

A bucket is reached through the same upstream store the gateway uses for ``--backend s3``
(s4.store.s3.S3Store), so a tool sees exactly the bytes and metadata the gateway would:
the stored body, the S4 manifest, the reserved ``.s4index``/``.s4mpu/`` objects. Credentials
come from the standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles...).
"""

from __future__ import annotations

import dataclasses
import os

from s4.config import UpstreamConfig
from s4.store.base import ObjectStore
from s4.tools.stored import ToolError

AWS_DEFAULT_ENDPOINT = "https://s3.{region}.amazonaws.com"


@dataclasses.dataclass(frozen=True)
class BucketUrl:
    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_bucket_url(text: str) -> BucketUrl | None:
    """``s3://bucket[/prefix]`` as a BucketUrl; None for anything else (a local path)."""
    if not text.startswith("s3://"):
        return None
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not bucket:
        raise ToolError(f"{text}: no bucket name", 2)
    return BucketUrl(bucket, prefix)


def upstream_config(endpoint_url: str | None, region: str | None = None, concurrency: int = 32) -> UpstreamConfig:
    """The settings of an S3 endpoint given on the command line: ``--endpoint-url`` (else AWS's own
    endpoint of ``--region``), credentials from the standard AWS chain."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = endpoint_url or AWS_DEFAULT_ENDPOINT.format(region=region)
    try:
        return UpstreamConfig(endpoint=endpoint, region=region, max_pool_connections=max(concurrency, 1))
    except ValueError as exc:
        raise ToolError(f"--endpoint-url: {exc}", 2) from None


async def open_bucket_store(config: UpstreamConfig) -> ObjectStore:
    """The upstream store (aiobotocore is imported only when a bucket is named)."""
    from s4.store.s3.store import S3Store

    return await S3Store.open(config)
