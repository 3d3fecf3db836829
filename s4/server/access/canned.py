"""The canned identity policies a config file names instead of writing an IAM document.

``admin``: every action on every resource. ``readonly``: ``s3:Get*`` and ``s3:List*`` on every bucket and
object (HeadBucket and HeadObject are ``s3:ListBucket`` and ``s3:GetObject``; ListBuckets is
``s3:ListAllMyBuckets``). ``writeonly``: PutObject and the multipart actions on every bucket, nothing read.
``readwrite`` (the default): ``s3:CreateBucket`` and ``s3:ListAllMyBuckets`` only: what it may do to its
own buckets comes from owning them (``decide(..., is_owner=True)``), and other owners' buckets are open to
it only as their policies and ACLs say, like an account of its own.
"""

from __future__ import annotations

from s4.server.access.policy import VARIABLES_VERSION, Policy, Statement

DEFAULT = "readwrite"


def _allow(*actions: str) -> Policy:
    return Policy((Statement("Allow", actions, ("*",)),), VARIABLES_VERSION)


CANNED_POLICIES: dict[str, Policy] = {
    "admin": _allow("*"),
    "readonly": _allow("s3:Get*", "s3:List*"),
    "writeonly": _allow(
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:ListBucketMultipartUploads",
    ),
    "readwrite": _allow("s3:CreateBucket", "s3:ListAllMyBuckets"),
}


def canned_identity_policy(name: str) -> Policy | None:
    """The policy a canned name stands for (``admin``, ``readwrite``, ``readonly``, ``writeonly``); None for
    any other name."""
    return CANNED_POLICIES.get(name)
