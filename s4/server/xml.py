"""S3's XML: response documents we write, and request documents we parse safely.

Responses are small and fixed in shape, so they are built from escaped strings.
Request bodies come from untrusted clients: they are size-limited before parsing and
parsed with defusedxml (no DTD, no entity expansion, no external entities), with caps on
nesting depth and element count so that a small body cannot build a large tree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.sax.saxutils import escape

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from s4.server.errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_REQUEST_XML = 2 * 1024 * 1024
_PART_NUMBER = re.compile(r"[0-9]{1,20}")
MAX_XML_DEPTH = 16
"""S3's request documents nest three or four deep."""
MAX_XML_ELEMENTS = 100_000
"""CompleteMultipartUpload's 10,000 parts at a handful of elements each, with room to spare."""


def iso8601(when: dt.datetime) -> str:
    """S3's timestamp form in XML: 2026-11-23T21:10:00.000Z."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


_CHARACTER_REFERENCES = {"\r": "&#13;"}
"""A literal CR would reach the client's parser as LF (XML normalises line ends); a reference survives."""


def element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value), _CHARACTER_REFERENCES)}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    return (XML_HEAD + f'<{root} xmlns="{S3_NS}">' + "".join(parts) + f"</{root}>").encode()


def url_encode_key(value: str) -> str:
    """``encoding-type=url``: what S3 does to keys and prefixes in listings."""
    return quote(value, safe="/~-_.")


class _TooComplex(ValueError):
    pass


class _LimitedTreeBuilder(TreeBuilder):
    """A TreeBuilder that refuses, as they open, elements past the depth or count limits.

    Checking while parsing matters: 2 MiB of ``<a>`` would otherwise build a tree of
    700,000 elements (some 175 MiB) before anything looked at it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._elements = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        self._elements += 1
        if self._depth > MAX_XML_DEPTH or self._elements > MAX_XML_ELEMENTS:
            raise _TooComplex("request XML nests too deep or has too many elements")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return super().end(tag)


def parse_xml(body: bytes) -> Element:
    if len(body) > MAX_REQUEST_XML:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
    parser = DefusedXMLParser(target=_LimitedTreeBuilder(), forbid_dtd=True)
    try:
        parser.feed(body)
        return parser.close()
    # LookupError: an encoding declaration naming no codec Python knows.
    except (ParseError, DefusedXmlException, ValueError, LookupError):
        raise _malformed() from None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(node, name: str) -> list:
    return [c for c in node if local_name(c.tag) == name]


def child_text(node, name: str) -> str | None:
    found = children(node, name)
    return (found[0].text or "") if found else None


def parse_complete_multipart(body: bytes) -> list[tuple[int, str]]:
    return parse_completion(body)[0]


def parse_completion(body: bytes) -> tuple[list[tuple[int, str]], dict[int, dict[str, str]]]:
    """A CompleteMultipartUpload document: its ``(part number, ETag)`` list, and per part number the
    checksums listed with it (``ChecksumSHA256`` -> ``sha256``; a number listed twice keeps its last)."""
    root = parse_xml(body)
    if local_name(root.tag) != "CompleteMultipartUpload":
        raise _malformed()
    parts = []
    checksums: dict[int, dict[str, str]] = {}
    for part in children(root, "Part"):
        number, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        # ASCII digits int() takes: str.isdigit() also accepts '²', and int() refuses over 4300 digits.
        if number is None or etag is None or not _PART_NUMBER.fullmatch(number.strip()):
            raise _malformed()
        parts.append((int(number), etag))
        names = [(local_name(c.tag), c.text or "") for c in part]
        checksums[int(number)] = {n[8:].lower(): t.strip() for n, t in names if n.startswith("Checksum") and n[8:]}
    if not parts:
        raise _malformed()
    return parts, checksums


def parse_delete_objects(body: bytes) -> tuple[bool, list[str]]:
    """``(quiet, keys)`` of a DeleteObjects request; at most 1000 keys, as S3 allows."""
    quiet, entries = parse_delete_entries(body)
    return quiet, [key for key, _ in entries]


def parse_delete_entries(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """``(quiet, [(key, version id or None)])`` of a DeleteObjects request; at most 1000, as S3 allows."""
    root = parse_xml(body)
    if local_name(root.tag) != "Delete":
        raise _malformed()
    quiet = (child_text(root, "Quiet") or "false").strip().lower() == "true"
    entries = []
    for obj in children(root, "Object"):
        key = child_text(obj, "Key")
        if key is None:
            raise _malformed()
        entries.append((key, child_text(obj, "VersionId")))
    if not entries or len(entries) > 1000:
        raise _malformed()
    return quiet, entries


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


def malformed_xml() -> S3Error:
    """MalformedXML: a request document that parses but is not the shape S3's schema gives it."""
    return _malformed()
