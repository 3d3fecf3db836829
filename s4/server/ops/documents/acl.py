"""Access control lists as S3 writes and reads them: canned ACLs (``x-amz-acl``), grant headers
(``x-amz-grant-*``) and the AccessControlPolicy document, checked as S3 checks them.

An ACL here is stored and returned, not enforced (the access-control layer decides who may do
what). Without one, a bucket or object has S3's default: its owner has FULL_CONTROL. The owner is
the identity that made the request (the gateway's identities own everything they create).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

from s4.server.errors import S3Error
from s4.server.ops.documents.common import check_children, root_of
from s4.server.xml import children, document, element, owner_xml

ACL_DOCUMENT = "acl"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PERMISSIONS = frozenset({"FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP"})
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)
MAX_GRANTS = 100
_GRANTEE_KINDS = {"CanonicalUser": "ID", "Group": "URI", "AmazonCustomerByEmail": "EmailAddress"}
_HEADER_GRANTEE = {"id": "CanonicalUser", "uri": "Group", "emailaddress": "AmazonCustomerByEmail"}
_HEADER_GRANT = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*')


@dataclasses.dataclass(frozen=True)
class Grant:
    kind: str
    """``CanonicalUser``, ``Group`` or ``AmazonCustomerByEmail``."""
    grantee: str
    """The user's ID, the group's URI or the e-mail address."""
    permission: str


@dataclasses.dataclass(frozen=True)
class Acl:
    owner: str
    grants: tuple[Grant, ...]

    @property
    def is_private(self) -> bool:
        """S3's default ACL: the owner alone, with FULL_CONTROL."""
        return self.grants == (Grant("CanonicalUser", self.owner, "FULL_CONTROL"),)

    def to_xml(self) -> bytes:
        """GetBucketAcl's / GetObjectAcl's answer, which is also the form kept."""
        # Group grants first, as Ceph RGW lists them (s3-tests compares in that order); the order means nothing.
        ordered = sorted(self.grants, key=lambda g: g.kind != "Group")
        grants = "".join(_grant_xml(g) for g in ordered)
        listed = f"<AccessControlList>{grants}</AccessControlList>"
        return document("AccessControlPolicy", [owner_xml(self.owner), listed])


def _grant_xml(grant: Grant) -> str:
    value = element(_GRANTEE_KINDS[grant.kind], grant.grantee)
    if grant.kind == "CanonicalUser":
        value += element("DisplayName", grant.grantee)
    return (
        f'<Grant><Grantee xmlns:xsi="{XSI}" xsi:type={quoteattr(grant.kind)}>{value}</Grantee>'
        f"{element('Permission', grant.permission)}</Grant>"
    )


def default_acl(owner: str) -> Acl:
    return Acl(owner, (Grant("CanonicalUser", owner, "FULL_CONTROL"),))


def canned_acl(name: str, owner: str, bucket_owner: str | None = None) -> Acl:
    """The grants a canned ACL stands for; ``bucket_owner`` for an object's ``bucket-owner-*`` ACLs."""
    if name not in CANNED_ACLS:
        raise S3Error("InvalidArgument", f"Invalid canned ACL: {name}", extra={"ArgumentName": "x-amz-acl"})
    grants = [Grant("CanonicalUser", owner, "FULL_CONTROL")]
    if name in ("public-read", "public-read-write"):
        grants.append(Grant("Group", ALL_USERS, "READ"))
    if name == "public-read-write":
        grants.append(Grant("Group", ALL_USERS, "WRITE"))
    if name == "authenticated-read":
        grants.append(Grant("Group", AUTHENTICATED_USERS, "READ"))
    if name == "log-delivery-write":
        grants += [Grant("Group", LOG_DELIVERY, "WRITE"), Grant("Group", LOG_DELIVERY, "READ_ACP")]
    if name.startswith("bucket-owner-") and bucket_owner is not None and bucket_owner != owner:
        permission = "READ" if name == "bucket-owner-read" else "FULL_CONTROL"
        grants.append(Grant("CanonicalUser", bucket_owner, permission))
    return Acl(owner, tuple(grants))


def _checked(grant: Grant) -> Grant:
    if grant.kind == "Group" and grant.grantee not in GROUPS:
        raise S3Error("InvalidArgument", "Invalid group uri", extra={"ArgumentName": "uri"})
    if grant.kind == "CanonicalUser" and not grant.grantee:
        raise S3Error("InvalidArgument", "Invalid id", extra={"ArgumentName": "CanonicalUser/ID"})
    if grant.kind == "AmazonCustomerByEmail":
        raise S3Error(
            "UnresolvableGrantByEmailAddress",
            "The e-mail address you provided does not match any account on record.",
        )
    return grant


def _header_grants(header: str, permission: str) -> list[Grant]:
    grants = []
    for piece in header.split(","):
        if not piece.strip():
            continue
        match = _HEADER_GRANT.fullmatch(piece)
        kind = _HEADER_GRANTEE.get(match.group(1).lower()) if match else None
        if match is None or kind is None:
            raise S3Error("InvalidArgument", f"Invalid grant header: {piece.strip()}")
        grants.append(_checked(Grant(kind, match.group(2) or match.group(3) or "", permission)))
    return grants


def acl_from_headers(headers: Mapping[str, str], owner: str, bucket_owner: str | None = None) -> Acl | None:
    """The ACL of ``x-amz-acl`` or of the ``x-amz-grant-*`` headers; None when the request has neither."""
    canned = headers.get("x-amz-acl")
    granted = {name: headers[name] for name in GRANT_HEADERS if name in headers}
    if canned is not None and granted:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        return canned_acl(canned.strip(), owner, bucket_owner)
    if not granted:
        return None
    grants = [g for name, value in granted.items() for g in _header_grants(value, GRANT_HEADERS[name])]
    if len(grants) > MAX_GRANTS:
        raise _malformed_acl()
    return Acl(owner, tuple(grants))


def requested_acl(headers: Mapping[str, str], body: bytes, owner: str, bucket_owner: str | None = None) -> Acl:
    """What PutBucketAcl / PutObjectAcl asks for: a canned ACL, grant headers, or an AccessControlPolicy
    document, exactly one of them."""
    from_headers = acl_from_headers(headers, owner, bucket_owner)
    if from_headers is not None and body.strip():
        raise S3Error("UnexpectedContent", "This request does not support content")
    if from_headers is None and not body.strip():
        missing = {"MissingHeaderName": "x-amz-acl"}
        raise S3Error("MissingSecurityHeader", "Your request was missing a required header", extra=missing)
    return from_headers or acl_from_document(body, owner)


def _malformed_acl() -> S3Error:
    return S3Error(
        "MalformedACLError", "The XML you provided was not well-formed or did not validate against our published schema"
    )


def _value(node: Element, name: str) -> str | None:
    found = children(node, name)
    if len(found) > 1 or (found and len(found[0])):
        raise _malformed_acl()
    return (found[0].text or "").strip() if found else None


def _document_grant(node: Element) -> Grant:
    check_children(node, {"Grantee", "Permission"})
    grantees, permission = children(node, "Grantee"), _value(node, "Permission")
    if len(grantees) != 1 or permission not in PERMISSIONS:
        raise _malformed_acl()
    grantee = grantees[0]
    kind = grantee.get(f"{{{XSI}}}type")
    if kind not in _GRANTEE_KINDS:
        raise _malformed_acl()
    value = _value(grantee, _GRANTEE_KINDS[kind])
    if value is None:
        raise _malformed_acl()
    return _checked(Grant(kind, value, permission))


def acl_from_document(body: bytes, owner: str) -> Acl:
    """An AccessControlPolicy document for a resource ``owner`` owns: AccessDenied if it names another owner."""
    try:
        root = root_of(body, "AccessControlPolicy")
    except S3Error as exc:
        if exc.code == "MalformedXML":
            raise _malformed_acl() from None
        raise
    owners, lists = children(root, "Owner"), children(root, "AccessControlList")
    if len(owners) != 1 or len(lists) != 1:
        raise _malformed_acl()
    named = _value(owners[0], "ID")
    if named is None:
        raise _malformed_acl()
    if named != owner:
        raise S3Error("AccessDenied", "Access Denied")
    grants = children(lists[0], "Grant")
    if len(grants) != len(lists[0]) or len(grants) > MAX_GRANTS:
        raise _malformed_acl()
    return Acl(owner, tuple(_document_grant(g) for g in grants))


def stored_acl(document_bytes: bytes) -> Acl:
    """An ACL as kept (its own to_xml): its owner and grants."""
    root = root_of(document_bytes, "AccessControlPolicy")
    owner = _value(children(root, "Owner")[0], "ID") or ""
    return acl_from_document(document_bytes, owner)


def owner_of(document_bytes: bytes | None, requester: str) -> str:
    """Who owns a resource: as its kept ACL says, else (no ACL was ever set) the requester."""
    if document_bytes is None:
        return requester
    return stored_acl(document_bytes).owner
