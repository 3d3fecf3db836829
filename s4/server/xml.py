"""S3's XML: response documents we write, and request documents we parse safely.

Responses are small and fixed in shape, so they are built from escaped strings.
Request bodies come from untrusted clients: they are size-limited before parsing and
parsed with defusedxml (no entity expansion, no external entities).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from urllib.parse import quote
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from s4.server.errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_REQUEST_XML = 2 * 1024 * 1024


def iso8601(when: dt.datetime) -> str:
    """S3's timestamp form in XML: 2026-11-23T21:10:00.000Z."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    return (XML_HEAD + f'<{root} xmlns="{S3_NS}">' + "".join(parts) + f"</{root}>").encode()


def url_encode_key(value: str) -> str:
    """``encoding-type=url``: what S3 does to keys and prefixes in listings."""
    return quote(value, safe="/~-_.")


def parse_xml(body: bytes):
    if len(body) > MAX_REQUEST_XML:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
    try:
        return ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise S3Error(
            "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema."
        ) from None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(node, name: str) -> list:
    return [c for c in node if local_name(c.tag) == name]


def child_text(node, name: str) -> str | None:
    found = children(node, name)
    return (found[0].text or "") if found else None


def parse_complete_multipart(body: bytes) -> list[tuple[int, str]]:
    root = parse_xml(body)
    if local_name(root.tag) != "CompleteMultipartUpload":
        raise _malformed()
    parts = []
    for part in children(root, "Part"):
        number, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise _malformed()
        parts.append((int(number), etag))
    if not parts:
        raise _malformed()
    return parts


def parse_delete_objects(body: bytes) -> tuple[bool, list[str]]:
    """``(quiet, keys)`` of a DeleteObjects request; at most 1000 keys, as S3 allows."""
    root = parse_xml(body)
    if local_name(root.tag) != "Delete":
        raise _malformed()
    quiet = (child_text(root, "Quiet") or "false").strip().lower() == "true"
    keys = []
    for obj in children(root, "Object"):
        key = child_text(obj, "Key")
        if key is None:
            raise _malformed()
        keys.append(key)
    if not keys or len(keys) > 1000:
        raise _malformed()
    return quiet, keys


def _malformed() -> S3Error:
    return S3Error(
        "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema."
    )


def owner_xml(owner_id: str) -> str:
    return f"<Owner>{element('ID', owner_id)}{element('DisplayName', owner_id)}</Owner>"


def optional(name: str, value: object | None) -> str:
    return "" if value is None else element(name, value)


def join(parts: Sequence[str]) -> str:
    return "".join(parts)
