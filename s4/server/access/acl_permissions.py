"""What an ACL grants: the permission each S3 action needs, on the bucket's ACL or on the object's, and
whether an ACL's grants give it to a caller.

S3's mapping of ACL permissions to actions: READ on a bucket lists it (ListBucket, ListBucketVersions,
ListBucketMultipartUploads); WRITE on a bucket creates, overwrites and deletes its objects (PutObject,
which covers the multipart steps, DeleteObject, DeleteObjectVersion, AbortMultipartUpload, and listing an
upload's parts); READ on an object reads it (GetObject, GetObjectVersion, GetObjectTorrent); READ_ACP and
WRITE_ACP read and write the ACL itself; FULL_CONTROL is all of them. WRITE on an object means nothing.
The owner named in an ACL may always read and write that ACL, whatever its grants say. The AllUsers
group is anyone, anonymous callers included; AuthenticatedUsers any signed request; a CanonicalUser
grantee is an identity name (the gateway's canonical ids are identity names).
"""

from __future__ import annotations

from s4.server.access.policy import principal_name
from s4.server.ops.documents.acl import ALL_USERS, AUTHENTICATED_USERS, Acl

BUCKET = "bucket"
OBJECT = "object"
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})

_MAPPING: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"), (BUCKET, "READ")),
    **dict.fromkeys(
        (
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ),
        (BUCKET, "WRITE"),
    ),
    "s3:GetBucketAcl": (BUCKET, "READ_ACP"),
    "s3:PutBucketAcl": (BUCKET, "WRITE_ACP"),
    **dict.fromkeys(("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTorrent"), (OBJECT, "READ")),
    **dict.fromkeys(("s3:GetObjectAcl", "s3:GetObjectVersionAcl"), (OBJECT, "READ_ACP")),
    **dict.fromkeys(("s3:PutObjectAcl", "s3:PutObjectVersionAcl"), (OBJECT, "WRITE_ACP")),
}
ACL_PERMISSIONS: dict[str, tuple[str, str]] = {action.lower(): value for action, value in _MAPPING.items()}
"""Lower-case action to (``bucket`` or ``object``: whose ACL is read, the permission it needs)."""


def acl_permission(action: str) -> tuple[str, str] | None:
    """Whose ACL (``BUCKET`` or ``OBJECT``) and which permission ``action`` needs; None when no ACL can grant
    it (tagging, policies, lifecycle... only policies and ownership do)."""
    return ACL_PERMISSIONS.get(action.lower())


def _grantee_matches(kind: str, grantee: str, principal: str | None, ignore_public: bool) -> bool:
    if kind == "Group":
        if ignore_public and grantee in PUBLIC_GROUPS:
            return False
        return grantee == ALL_USERS or (grantee == AUTHENTICATED_USERS and principal is not None)
    if kind == "CanonicalUser":
        return principal is not None and principal_name(principal) == grantee
    return False


def acl_allows(acl: Acl, action: str, principal: str | None, *, ignore_public: bool = False) -> bool:
    """Whether ``acl`` (the bucket's or the object's, as ``acl_permission`` says) lets ``principal`` (None:
    anonymous) do ``action``; ``ignore_public`` (PublicAccessBlock IgnorePublicAcls) drops the grants to
    AllUsers and AuthenticatedUsers."""
    needed = acl_permission(action)
    if needed is None:
        return False
    permission = needed[1]
    if permission in ("READ_ACP", "WRITE_ACP") and principal is not None and principal_name(principal) == acl.owner:
        return True
    return any(
        grant.permission in (permission, "FULL_CONTROL")
        and _grantee_matches(grant.kind, grant.grantee, principal, ignore_public)
        for grant in acl.grants
    )


def is_public_acl(acl: Acl) -> bool:
    """S3's rule: an ACL is public when it grants anything to AllUsers or AuthenticatedUsers."""
    return any(grant.kind == "Group" and grant.grantee in PUBLIC_GROUPS for grant in acl.grants)
