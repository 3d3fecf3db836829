"""Which bucket and key a request names: path style, or virtual-hosted style under ``--domain``."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

from s4.server.errors import S3Error

_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def split_target(host: str | None, raw_path: str, domain: str | None) -> tuple[str | None, str | None]:
    """``(bucket, key)`` from the Host header and the raw (percent-encoded) path.

    With a domain configured, ``bucket.DOMAIN`` puts the bucket in the host and the
    whole path is the key; a request to the bare domain (or any other host) is path
    style. The key is percent-decoded here, once.
    """
    path = raw_path.split("?", 1)[0]
    hostname = (host or "").rsplit(":", 1)[0].lower() if host and not host.startswith("[") else (host or "")
    if domain and hostname.endswith("." + domain):
        bucket = hostname[: -len(domain) - 1]
        key = unquote(path[1:]) if path.startswith("/") else unquote(path)
        return bucket, key or None
    trimmed = path[1:] if path.startswith("/") else path
    if not trimmed:
        return None, None
    bucket, _, key = trimmed.partition("/")
    return unquote(bucket), (unquote(key) or None)


def check_bucket_name(name: str) -> None:
    """S3's naming rules for new buckets (existing ones are just looked up)."""
    if (
        not 3 <= len(name) <= 63
        or not _BUCKET_CHARS.fullmatch(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(("xn--", "sthree-"))
        or name.endswith(("-s3alias", "--ol-s3"))
        or _is_ip(name)
    ):
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", resource=name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True
