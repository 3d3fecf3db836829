"""PutBucketPolicy's document: an IAM policy in JSON, checked as S3 checks it before keeping it.

The policy is kept byte for byte (GetBucketPolicy returns exactly what was put, as S3 does) once it is a
well-formed policy about this bucket. The parsing and its reasons live in the access-control layer
(``s4.server.access.policy``), which evaluates the same parsed policy: here a refusal becomes S3's
400 MalformedPolicy with that reason.
"""

from __future__ import annotations

from s4.server.access.policy import MAX_POLICY_BYTES, VERSIONS, PolicyError, parse_bucket_policy
from s4.server.errors import S3Error

__all__ = ["MAX_POLICY_BYTES", "VERSIONS", "validate_policy"]


def validate_policy(body: bytes, bucket: str) -> bytes:
    """The policy to keep, unchanged, once it passed; MalformedPolicy with S3's reason otherwise."""
    try:
        parse_bucket_policy(body, bucket)
    except PolicyError as exc:
        raise S3Error("MalformedPolicy", exc.message) from None
    return body
