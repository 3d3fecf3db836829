"""What the bucket documents share: S3's request XML read strictly, and written back in S3's form."""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element

from s4.server.body.checksums import declares_body_checksum
from s4.server.errors import S3Error
from s4.server.xml import children, document, element, local_name, parse_xml


def malformed() -> S3Error:
    return S3Error(
        "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema"
    )


def require_body_digest(headers: Mapping[str, str]) -> None:
    """S3 takes a bucket document (but a notification configuration) only with a digest of its body,
    Content-MD5 or a flexible checksum, as for DeleteObjects; the value is checked as the body is read."""
    if not declares_body_checksum(headers):
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")


def root_of(body: bytes, name: str) -> Element:
    """The parsed request document; MalformedXML when it is empty or its root is not ``name``."""
    if not body.strip():
        raise malformed()
    root = parse_xml(body)
    if local_name(root.tag) != name:
        raise malformed()
    return root


def check_children(node: Element, allowed: frozenset[str] | set[str]) -> None:
    """MalformedXML for an element S3's schema does not have there."""
    for child in node:
        if local_name(child.tag) not in allowed:
            raise malformed()


def only(node: Element, name: str, *, required: bool = True) -> Element | None:
    """The one ``name`` child; MalformedXML when it is repeated, or missing and ``required``."""
    found = children(node, name)
    if len(found) > 1 or (required and not found):
        raise malformed()
    return found[0] if found else None


def one(node: Element, name: str) -> Element:
    """The one ``name`` child S3's schema requires there; MalformedXML when missing or repeated."""
    found = children(node, name)
    if len(found) != 1:
        raise malformed()
    return found[0]


def text(node: Element, name: str, *, required: bool = True) -> str | None:
    """The text of the one ``name`` child (``""`` when empty), or None when it is absent."""
    child = only(node, name, required=required)
    if child is None:
        return None
    if len(child):
        raise malformed()  # a value, not a structure
    return child.text or ""


def boolean(value: str) -> bool:
    """An XML boolean as S3 takes it: ``true`` or ``false``."""
    if value.strip() not in ("true", "false"):
        raise malformed()
    return value.strip() == "true"


def integer(value: str) -> int:
    """A decimal integer; MalformedXML otherwise (what S3's schema check answers)."""
    digits = value.strip()
    body = digits[1:] if digits[:1] == "-" else digits
    if not body.isascii() or not body.isdigit() or len(body) > 18:
        raise malformed()
    return int(digits)


def serialized(root: Element) -> bytes:
    """The document as S3 returns it: S3's namespace on the root, whitespace between elements dropped,
    each value as sent. Attributes are not kept: no bucket document but the ACL has any."""
    return document(local_name(root.tag), [_render(child) for child in root])


def _render(node: Element) -> str:
    name = local_name(node.tag)
    if len(node) == 0:
        return element(name, node.text or "")
    return f"<{name}>" + "".join(_render(child) for child in node) + f"</{name}>"
