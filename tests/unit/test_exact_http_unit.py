"""Pieces of issue 13's HTTP fixes that are cheaper to pin down without a server."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, MultiDict

from s4.config import LimitsConfig, load_config
from s4.server.body.checksums import declares_body_checksum
from s4.server.errors import S3Error
from s4.server.http import attributes_from_headers, stored_content_encoding
from s4.server.limits import BodyRate, idle_bounded, server_settings
from s4.server.routes import operation_name
from s4.server.xml import element


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked,gzip", "gzip"),
        ("AWS-Chunked, gzip, br", "gzip,br"),
        ("gzip,aws-chunked", "gzip"),
        (None, None),
    ],
)
def test_the_stored_content_encoding_drops_only_aws_chunked(sent, kept):
    assert stored_content_encoding(sent) == kept
    headers = CIMultiDict({"Content-Encoding": sent} if sent is not None else {})
    assert attributes_from_headers(headers).headers.get("content-encoding") == kept


def test_the_parser_limits_admit_any_header_section_within_the_limit():
    settings = server_settings(LimitsConfig(max_header_bytes=8192))
    assert settings["auto_decompress"] is False
    assert settings["max_field_size"] > 8192  # a line just past the limit gets our own answer
    assert settings["max_headers"] * 8 > 8192  # 8 KiB of 8-byte lines ("X-Ab: v" CRLF)
    assert settings["max_line_size"] >= 8192 + 3 * 1024  # the query counts, a 1024-byte key's path does not


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "name"),
    [
        ("GET", "b", None, {"acl": ""}, "GetBucketAcl"),
        ("PUT", "b", "k", {"tagging": ""}, "PutObjectTagging"),
        ("GET", "b", None, {"versions": ""}, "ListObjectVersions"),
        ("GET", "b", None, {"publicAccessBlock": ""}, "GetPublicAccessBlock"),
        ("PUT", "b", "k", {"legal-hold": ""}, "PutObjectLegalHold"),
        ("POST", "b", "k", {}, "PostObject"),
        ("DELETE", None, None, {}, "DeleteService"),
        ("GET", "b", "k", {}, "GetObject"),
        ("POST", "b", None, {"delete": ""}, "DeleteObjects"),
    ],
)
def test_every_request_has_an_operation_name(method, bucket, key, query, name):
    assert operation_name(method, bucket, key, MultiDict(query), CIMultiDict()) == name


@pytest.mark.parametrize(
    ("headers", "declared"),
    [
        ({}, False),
        ({"Content-MD5": "x"}, True),
        ({"x-amz-checksum-crc32": "x"}, True),
        ({"x-amz-trailer": "x-amz-checksum-crc32"}, True),
        ({"x-amz-sdk-checksum-algorithm": "CRC32"}, False),
        ({"x-amz-checksum-mode": "ENABLED"}, False),
    ],
)
def test_a_body_digest_is_declared_by_md5_a_checksum_or_a_trailer(headers, declared):
    assert declares_body_checksum(CIMultiDict(headers)) is declared


def test_a_carriage_return_in_xml_text_is_a_character_reference():
    assert element("Key", "a\rb\nc&") == "<Key>a&#13;b\nc&amp;</Key>"


class _Trickle:
    """A body source that yields ``piece`` every ``gap`` seconds, ``count`` times."""

    def __init__(self, piece: bytes, gap: float, count: int) -> None:
        self.piece, self.gap, self.left = piece, gap, count
        self.total_bytes = 0

    def at_eof(self) -> bool:
        return self.left == 0

    async def readchunk(self) -> tuple[bytes, bool]:
        if self.left == 0:
            return b"", False
        await asyncio.sleep(self.gap)
        self.left -= 1
        self.total_bytes += len(self.piece)
        return self.piece, False


async def _drain(source, rate: BodyRate) -> int:
    total = 0
    async for data in idle_bounded(source, timeout=10, rate=rate):
        total += len(data)
    return total


def test_a_body_below_the_minimum_rate_fails_with_request_timeout():
    with pytest.raises(S3Error) as info:
        asyncio.run(_drain(_Trickle(b"x", 0.05, 1000), BodyRate(rate=100, window=0.3)))
    assert info.value.code == "RequestTimeout"


def test_a_body_at_the_minimum_rate_passes_and_zero_turns_it_off():
    assert asyncio.run(_drain(_Trickle(b"x" * 100, 0.05, 20), BodyRate(rate=100, window=0.3))) == 2000
    assert asyncio.run(_drain(_Trickle(b"x", 0.02, 30), BodyRate(rate=0, window=0.1))) == 30


def _reader_fed(pieces: list[bytes], *, chunked: bool = False) -> StreamReader:
    """aiohttp's own request body reader, given ``pieces`` as its parser would (one HTTP chunk each)."""
    protocol = mock.Mock(_reading_paused=False)
    reader = StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    for piece in pieces:
        if chunked:
            reader.begin_http_chunk_receiving()
        reader.feed_data(piece)
        if chunked:
            reader.end_http_chunk_receiving()
    reader.feed_eof()
    return reader


@pytest.mark.parametrize("chunked", [False, True])
def test_buffered_pieces_come_out_as_they_were_received_not_joined(chunked):
    """Joining what waits in the buffer (``readany``) copied a third of a PUT's bytes into fresh memory."""
    pieces = [bytes([n]) * (100_000 + n) for n in range(4)]

    async def drain() -> list[bytes]:
        reader = _reader_fed(pieces, chunked=chunked)
        return [piece async for piece in idle_bounded(reader, timeout=10)]

    out = asyncio.run(drain())
    assert out == pieces
    assert all(got is sent for got, sent in zip(out, pieces, strict=True))


def test_a_miscounted_reader_ends_instead_of_spinning():
    """A piece taken before idle_bounded began leaves its count one piece ahead of what waits; at the end
    the reader answers without waiting, and taking that as a piece looped forever on the event loop."""

    async def drain() -> list[bytes]:
        reader = _reader_fed([b"a" * 1000, b"b" * 1000])
        await reader.readchunk()
        counted = _CountedReads(reader)
        return await asyncio.wait_for(_collect(idle_bounded(counted, timeout=10)), 5)

    assert asyncio.run(drain()) == [b"b" * 1000]


class _CountedReads:
    """A body reader that fails a test looping on it instead of hanging it."""

    def __init__(self, reader: StreamReader) -> None:
        self.reader, self.calls = reader, 0

    @property
    def total_bytes(self) -> int:
        return self.reader.total_bytes

    def at_eof(self) -> bool:
        return self.reader.at_eof()

    async def readchunk(self) -> tuple[bytes, bool]:
        self.calls += 1
        assert self.calls < 100, "idle_bounded keeps reading an ended body"
        return await self.reader.readchunk()


async def _collect(pieces) -> list[bytes]:
    return [piece async for piece in pieces]


def test_a_body_that_waits_for_its_pieces_gets_them_all():
    async def drain() -> bytes:
        reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())

        async def feed() -> None:
            for n in range(5):
                await asyncio.sleep(0.01)
                reader.feed_data(bytes([n]) * 1000)
            reader.feed_eof()

        feeding = asyncio.create_task(feed())
        body = b"".join([piece async for piece in idle_bounded(reader, timeout=10)])
        await feeding
        return body

    assert asyncio.run(drain()) == b"".join(bytes([n]) * 1000 for n in range(5))


def test_time_spent_by_the_gateway_does_not_count_against_the_client():
    rate = BodyRate(rate=1000, window=1.0)
    rate.record(10)  # buffered bytes, taken without waiting
    assert rate.budget() == 1.0
    rate.record(10, waited=0.5)
    assert rate.budget() == pytest.approx(0.5)
    rate.record(2000, waited=0.4)
    assert rate.budget() == float("inf")


def test_the_minimum_rate_is_configured_in_limits_and_the_environment():
    config = load_config(env={"S4_LIMITS_MIN_BODY_RATE": "4096", "S4_LIMITS_MIN_BODY_RATE_WINDOW": "10"})
    assert (config.limits.min_body_rate, config.limits.min_body_rate_window) == (4096, 10)
    assert (LimitsConfig().min_body_rate, LimitsConfig().min_body_rate_window) == (1024, 30)
