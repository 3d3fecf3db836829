"""VerifiedBody over real boto3 uploads, and every way a body can fail its checks.

The contract under test: a failed check raises S3Error in place of the end of iteration,
so a store that commits only after exhausting the iterator never commits a bad body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s4.server.auth.sigv4 import AuthContext, PayloadMode
from s4.server.body.checksums import checksum_of
from s4.server.body.verified import VerifiedBody
from s4.server.errors import S3Error
from tests.unit.test_auth import Wire, capture, check, client, http_client
from tests.unit.test_chunked import encode_signed, encode_unsigned, streaming_auth

PAYLOAD = bytes(range(256)) * 64 + b"the end"


async def _source(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


def pieces_of(body: bytes, size: int = 1000) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def consume(body: VerifiedBody) -> tuple[bytes, S3Error | None]:
    """Everything a consumer received, and the error that ended it (None for a clean end)."""
    received: list[bytes] = []

    async def run() -> S3Error | None:
        try:
            async for piece in body:
                received.append(piece)
        except S3Error as error:
            return error
        return None

    error = asyncio.run(run())
    return b"".join(received), error


def verified(wire: Wire, auth: AuthContext | None = None, **kwargs) -> VerifiedBody:
    return VerifiedBody(_source(pieces_of(wire.body)), wire.headers, auth or check(wire), **kwargs)


def failure(body: VerifiedBody, code: str) -> tuple[bytes, S3Error]:
    received, error = consume(body)
    assert error is not None, "the body passed every check"
    assert error.code == code, error.message
    return received, error


def refused_at_start(code: str, *args, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as info:
        VerifiedBody(*args, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def with_body(wire: Wire, body: bytes) -> Wire:
    return Wire(wire.method, wire.path, wire.query, wire.headers, body)


def https_client(**config):
    return client("https://s4.test", **config)


# --- successful uploads from boto3 -------------------------------------------------------------------------


def test_put_over_http_with_checksum_header_and_content_md5():
    md5 = base64.b64encode(hashlib.md5(PAYLOAD).digest()).decode()
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD, ContentMD5=md5)
    assert wire.headers["x-amz-checksum-crc32"] and wire.headers["Content-MD5"] == md5
    body = verified(wire)
    assert check(wire).payload_mode is PayloadMode.SHA256
    received, error = consume(body)
    assert error is None
    assert received == PAYLOAD
    assert body.size == len(PAYLOAD)
    assert body.checksums == {"crc32": checksum_of("crc32", PAYLOAD)}
    assert body.trailers == {}
    assert body.verified


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_put_over_https_with_trailing_checksum(algorithm):
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD, ChecksumAlgorithm=algorithm)
    assert wire.headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    body = verified(wire)
    received, error = consume(body)
    assert error is None
    assert received == PAYLOAD
    expected = checksum_of(algorithm.lower(), PAYLOAD)
    assert body.checksums == {algorithm.lower(): expected}
    assert body.trailers == {f"x-amz-checksum-{algorithm.lower()}": expected}


def test_upload_part_over_https_in_small_network_reads():
    wire = capture(https_client(), "upload_part", Bucket="b", Key="k", UploadId="u", PartNumber=3, Body=PAYLOAD)
    headers = CIMultiDictProxy(CIMultiDict(wire.headers))  # what aiohttp hands over
    body = VerifiedBody(_source(pieces_of(wire.body, 7)), headers, check(wire))
    assert consume(body) == (PAYLOAD, None)


def test_unsigned_payload_without_checksum():
    s3 = https_client(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")
    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    body = verified(wire)
    assert consume(body) == (PAYLOAD, None)
    assert body.checksums == {}


def test_empty_body():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=b"")
    body = verified(wire)
    assert consume(body) == (b"", None)
    assert body.size == 0


@pytest.mark.parametrize("mode", [PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER])
@pytest.mark.parametrize("content_encoding", ["aws-chunked", None])
def test_signed_streaming_upload(mode, content_encoding):
    auth = streaming_auth(mode)
    headers = {"x-amz-decoded-content-length": str(len(PAYLOAD))}
    if content_encoding:
        headers["Content-Encoding"] = content_encoding
    trailers = None
    if mode is PayloadMode.STREAMING_SIGNED_TRAILER:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
        trailers = [("x-amz-checksum-crc32c", checksum_of("crc32c", PAYLOAD))]
    encoded = encode_signed(auth, PAYLOAD, 4096, trailers)
    body = VerifiedBody(_source(pieces_of(encoded, 999)), headers, auth)
    assert consume(body) == (PAYLOAD, None)
    assert body.checksums == ({"crc32c": checksum_of("crc32c", PAYLOAD)} if trailers else {})


# --- failures at the end: the consumer has the whole body, then the error ---------------------------------


def test_content_sha256_mismatch():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    altered = bytearray(PAYLOAD)
    altered[5000] ^= 0xFF
    body = verified(with_body(wire, bytes(altered)), check(wire))
    received, error = failure(body, "XAmzContentSHA256Mismatch")
    assert received == bytes(altered)
    assert error.extra["ClientComputedContentSHA256"] == hashlib.sha256(PAYLOAD).hexdigest()


def test_content_md5_mismatch():
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD, ContentMD5=wrong)
    received, error = failure(verified(wire), "BadDigest")
    assert received == PAYLOAD
    assert "Content-MD5" in error.message


@pytest.mark.parametrize("value", ["nope", "", base64.b64encode(b"short").decode(), "AAAA" * 8])
def test_malformed_content_md5_is_refused_before_any_byte(value):
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    headers = {**wire.headers, "Content-MD5": value}
    refused_at_start("InvalidDigest", _source([PAYLOAD]), headers, check(wire))


def test_checksum_header_mismatch():
    s3 = https_client(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")
    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD, ChecksumCRC32="AAAAAA==")
    received, error = failure(verified(wire), "BadDigest")
    assert received == PAYLOAD
    assert error.message == "The CRC32 you specified did not match the calculated checksum."


def test_md5_and_checksum_are_both_checked():
    md5 = base64.b64encode(hashlib.md5(PAYLOAD).digest()).decode()
    wrong_md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    good_crc = checksum_of("crc32", PAYLOAD)
    s3 = https_client(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")

    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD, ContentMD5=wrong_md5, ChecksumCRC32=good_crc)
    assert "Content-MD5" in failure(verified(wire), "BadDigest")[1].message

    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD, ContentMD5=md5, ChecksumCRC32="AAAAAA==")
    assert "CRC32" in failure(verified(wire), "BadDigest")[1].message

    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD, ContentMD5=md5, ChecksumCRC32=good_crc)
    body = verified(wire)
    assert consume(body) == (PAYLOAD, None)
    assert body.checksums == {"crc32": good_crc}


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "SHA256"])
def test_trailing_checksum_mismatch(algorithm):
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD, ChecksumAlgorithm=algorithm)
    good = checksum_of(algorithm.lower(), PAYLOAD)
    wrong = checksum_of(algorithm.lower(), b"other")
    received, error = failure(verified(with_body(wire, wire.body.replace(good.encode(), wrong.encode()))), "BadDigest")
    assert received == PAYLOAD
    assert error.message == f"The {algorithm} you specified did not match the calculated checksum."


def test_trailing_checksum_missing():
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    trailer_at = wire.body.index(b"x-amz-checksum-crc32:")
    received, error = failure(verified(with_body(wire, wire.body[:trailer_at] + b"\r\n")), "InvalidRequest")
    assert received == PAYLOAD
    assert "x-amz-checksum-crc32" in error.message


def test_trailing_checksum_malformed():
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    good = checksum_of("crc32", PAYLOAD).encode()
    failure(verified(with_body(wire, wire.body.replace(good, b"not-base64"))), "InvalidRequest")


def test_undeclared_checksum_trailer_is_refused():
    auth = streaming_auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)
    encoded = encode_unsigned(PAYLOAD, 1000, [("x-amz-checksum-sha1", checksum_of("sha1", PAYLOAD))])
    headers = {"x-amz-decoded-content-length": str(len(PAYLOAD))}
    failure(VerifiedBody(_source([encoded]), headers, auth), "InvalidRequest")
    headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    failure(VerifiedBody(_source([encoded]), headers, auth), "InvalidRequest")


def test_body_shorter_than_content_length():
    s3 = https_client(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")
    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    received, _ = failure(verified(with_body(wire, PAYLOAD[:-10]), check(wire)), "IncompleteBody")
    assert received == PAYLOAD[:-10]


def test_decoded_length_mismatch():
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    auth = check(wire)
    longer = {**wire.headers, "X-Amz-Decoded-Content-Length": str(len(PAYLOAD) + 1)}
    received, _ = failure(VerifiedBody(_source([wire.body]), longer, auth), "IncompleteBody")
    assert received == PAYLOAD

    shorter = {**wire.headers, "X-Amz-Decoded-Content-Length": str(len(PAYLOAD) - 1)}
    received, error = failure(VerifiedBody(_source(pieces_of(wire.body)), shorter, auth), "IncompleteBody")
    assert len(received) <= len(PAYLOAD) - 1  # refused as soon as the body ran past its length
    assert "longer" in error.message


def test_truncated_aws_chunked_body():
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    failure(verified(with_body(wire, wire.body[:-20]), check(wire)), "IncompleteBody")


# --- failures before the end ----------------------------------------------------------------------------------


def test_bad_chunk_signature_stops_the_body_at_the_last_good_chunk():
    auth = streaming_auth(PayloadMode.STREAMING_SIGNED)
    encoded = bytearray(encode_signed(auth, PAYLOAD, 4096))
    second_line = encoded.index(b";chunk-signature=", encoded.index(b";chunk-signature=") + 1)
    encoded[encoded.index(b"\r\n", second_line) + 50] ^= 0x01  # inside the second chunk's data
    headers = {"x-amz-decoded-content-length": str(len(PAYLOAD))}
    received, _ = failure(VerifiedBody(_source(pieces_of(bytes(encoded), 100)), headers, auth), "SignatureDoesNotMatch")
    assert received == PAYLOAD[:4096]


def test_entity_too_large_as_soon_as_it_is_exceeded():
    s3 = https_client(s3={"payload_signing_enabled": False}, request_checksum_calculation="when_required")
    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    headers = {k: v for k, v in wire.headers.items() if k.lower() != "content-length"}
    received, error = failure(
        VerifiedBody(_source(pieces_of(PAYLOAD, 1000)), headers, check(wire), max_size=5500), "EntityTooLarge"
    )
    assert len(received) == 5000  # the piece that would cross the limit is never handed out
    assert error.extra["MaxSizeAllowed"] == "5500"


def test_declared_length_over_the_limit_is_refused_before_any_byte():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    refused_at_start("EntityTooLarge", _source([PAYLOAD]), wire.headers, check(wire), max_size=len(PAYLOAD) - 1)
    streaming = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    auth = check(streaming)
    refused_at_start("EntityTooLarge", _source([]), streaming.headers, auth, max_size=len(PAYLOAD) - 1)


def test_header_problems_are_refused_before_any_byte():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    auth = check(wire)
    refused_at_start("BadDigest", _source([]), {**wire.headers, "x-amz-checksum-crc32": "bad"}, auth)
    refused_at_start("InvalidRequest", _source([]), {**wire.headers, "x-amz-trailer": "x-amz-checksum-crc32"}, auth)
    refused_at_start("InvalidArgument", _source([]), {**wire.headers, "Content-Length": "lots"}, auth)
    streaming = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    both = {**streaming.headers, "x-amz-checksum-sha1": checksum_of("sha1", PAYLOAD)}
    refused_at_start("InvalidRequest", _source([]), both, check(streaming))


# --- the contract with the store --------------------------------------------------------------------------------


async def _store(body: VerifiedBody, committed: list[bytes]) -> None:
    """A store that writes pieces to a temporary place and commits only after the last one."""
    staged = [piece async for piece in body]
    committed.append(b"".join(staged))


def test_store_commits_nothing_when_a_check_fails():
    wire = capture(https_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    good = checksum_of("crc32", PAYLOAD).encode()
    bad = with_body(wire, wire.body.replace(good, checksum_of("crc32", b"x").encode()))
    committed: list[bytes] = []
    with pytest.raises(S3Error):
        asyncio.run(_store(verified(bad), committed))
    assert committed == []
    asyncio.run(_store(verified(wire), committed))
    assert committed == [PAYLOAD]


def test_results_exist_only_after_a_verified_end():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    body = verified(wire)
    assert not body.verified and body.checksums == {}
    consume(body)
    assert body.verified and body.checksums
    with pytest.raises(RuntimeError):
        body.__aiter__()  # a request body can be read only once


def test_failed_body_exposes_no_digest():
    wire = capture(http_client(), "put_object", Bucket="b", Key="k", Body=PAYLOAD)
    body = verified(with_body(wire, PAYLOAD[:-1] + b"!"), check(wire))
    consume(body)
    assert not body.verified
    assert body.checksums == {}
