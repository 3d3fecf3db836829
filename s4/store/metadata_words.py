"""User metadata values (and stored headers) as RFC 2047 encoded words, where a value cannot travel as
the bytes it is.

A client's ``x-amz-meta-*`` value, like its Content-Disposition or Content-Type, is kept as the bytes
it sent (aiohttp hands bytes that were not UTF-8 over as lone surrogates). Two places cannot carry
such bytes as they are: an upstream S3, whose client (botocore) accepts ASCII only in metadata, and a
response header, which aiohttp writes as UTF-8 (dropping lone surrogates) and which may hold no
control character. There the value goes as one encoded word of its exact bytes, ``=?UTF-8?B?...?=``,
the form S3 itself answers for a non-ASCII metadata value.
"""

from __future__ import annotations

import base64
import binascii
import re

_ENCODED_WORD = re.compile(r"=\?([A-Za-z0-9_.:-]+)\?[Bb]\?([A-Za-z0-9+/]*={0,2})\?=")
"""One RFC 2047 encoded word in the B (base64) encoding: what this module writes, and what S3 answers for
a non-ASCII value another client stored."""


def encode_metadata_value(value: str) -> str:
    """``value`` as the upstream may carry it: itself when ASCII, else one RFC 2047 encoded word of its
    bytes (aiohttp hands bytes that were not UTF-8 over as lone surrogates: they are those bytes again).
    An ASCII value holding ``=?`` is encoded too, so that reading it back never decodes what a client
    wrote literally."""
    if value.isascii() and "=?" not in value:
        return value
    return encoded_word(value)


def decode_metadata_value(value: str) -> str:
    """A value read from the upstream: one whole encoded word decoded to the bytes it names; anything
    else, or a word that does not decode, as it is."""
    match = _ENCODED_WORD.fullmatch(value)
    if match is None:
        return value
    try:
        raw = base64.b64decode(match.group(2), validate=True)
        return raw.decode(match.group(1), errors="surrogateescape")
    except (binascii.Error, LookupError, ValueError):
        return value


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What a header value may not hold (aiohttp refuses to write it: header injection)."""


def header_safe(value: str) -> bool:
    """Whether a response header can carry ``value`` as it is: it came from bytes that were UTF-8 (no
    lone surrogates) and holds no control character."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _CONTROL.search(value) is None


def encoded_word(value: str) -> str:
    """One RFC 2047 encoded word (B encoding) of the bytes ``value`` stands for."""
    raw = value.encode("utf-8", errors="surrogateescape")
    return f"=?UTF-8?B?{base64.b64encode(raw).decode('ascii')}?="
