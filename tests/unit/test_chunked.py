"""aws-chunked decoding: AWS's published streaming examples, botocore's own encoder, and an
independent encoder for the signed modes (botocore cannot sign chunks) that is itself
checked byte for byte against AWS's published example bodies."""

from __future__ import annotations

import hashlib
import hmac
import io
from functools import cache

import pytest
from botocore.auth import SigV4Auth
from botocore.httpchecksum import (
    AwsChunkedWrapper,
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.server.auth.sigv4 import AuthContext, Credential, Credentials, PayloadMode, authenticate
from s4.server.body.checksums import checksum_of
from s4.server.body.chunked import MAX_CHUNK, MAX_LINE, MAX_TRAILER, AwsChunkedDecoder
from s4.server.errors import S3Error
from tests.unit.test_auth import DOC_NOW, ENDPOINT, check, sign

EMPTY = hashlib.sha256(b"").hexdigest()
SIGNED = PayloadMode.STREAMING_SIGNED
SIGNED_TRAILER = PayloadMode.STREAMING_SIGNED_TRAILER
UNSIGNED_TRAILER = PayloadMode.STREAMING_UNSIGNED_TRAILER
STREAMING_MODES = [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER]


# --- encoders -------------------------------------------------------------------------------------------


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _split(payload: bytes, chunk_size: int) -> list[bytes]:
    return [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)]


def encode_signed(
    auth: AuthContext, payload: bytes, chunk_size: int, trailers: list[tuple[str, str]] | None = None
) -> bytes:
    """SigV4 streaming encoding as AWS documents it (sigv4-streaming and sigv4-streaming-trailers)."""
    previous = auth.seed_signature
    out = bytearray()
    for chunk in [*_split(payload, chunk_size), b""]:
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, previous, EMPTY, hashlib.sha256(chunk).hexdigest()]
        )
        previous = _hmac_hex(auth.signing_key, to_sign)
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk
        if chunk:
            out += b"\r\n"
    if trailers is None:
        return bytes(out + b"\r\n")
    block = "".join(f"{name}:{value}\n" for name, value in trailers)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, previous, hashlib.sha256(block.encode()).hexdigest()]
    )
    out += block.replace("\n", "\r\n").encode()
    out += f"x-amz-trailer-signature:{_hmac_hex(auth.signing_key, to_sign)}\r\n\r\n".encode()
    return bytes(out)


def encode_unsigned(payload: bytes, chunk_size: int, trailers: list[tuple[str, str]] = ()) -> bytes:
    out = bytearray()
    for chunk in _split(payload, chunk_size):
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}:{value}\r\n".encode()
    return bytes(out + b"\r\n")


def encode(mode: PayloadMode, auth: AuthContext, payload: bytes, chunk_size: int) -> bytes:
    trailer = [("x-amz-checksum-crc32", checksum_of("crc32", payload))]
    if mode is SIGNED:
        return encode_signed(auth, payload, chunk_size)
    if mode is SIGNED_TRAILER:
        return encode_signed(auth, payload, chunk_size, trailer)
    return encode_unsigned(payload, chunk_size, trailer)


@cache
def streaming_auth(mode: PayloadMode) -> AuthContext:
    """The AuthContext of a real botocore-signed streaming PUT (the seed of the chunk chain)."""
    headers = {"X-Amz-Content-SHA256": mode.value, "Content-Encoding": "aws-chunked"}
    # The generic signer keeps a preset X-Amz-Content-SHA256, as streaming signers need.
    return check(sign("PUT", f"{ENDPOINT}/bucket/key", headers=headers, signer=SigV4Auth))


def decode(auth: AuthContext, body: bytes, cuts: list[int] = ()) -> tuple[bytes, dict[str, str]]:
    decoder = AwsChunkedDecoder(auth)
    out = []
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        out.extend(decoder.feed(body[start:cut]))
        start = cut
    return b"".join(out), decoder.finish()


def refused(auth: AuthContext, body: bytes, code: str) -> S3Error:
    with pytest.raises(S3Error) as info:
        decode(auth, body)
    assert info.value.code == code, info.value.message
    return info.value


# --- AWS's published examples (66560 bytes of 'a' in 64 KiB + 1 KiB chunks) ---------------------------

DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_PAYLOAD = b"a" * 66560
DOC = {
    SIGNED: {
        "signed_headers": "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "seed": "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        "chunks": [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ],
        "tail": b"\r\n",
    },
    SIGNED_TRAILER: {
        "signed_headers": "content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
        "seed": "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
        "chunks": [
            "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
            "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
            "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
        ],
        "tail": b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n",
    },
}


def doc_request(mode: PayloadMode) -> tuple[dict[str, str], bytes]:
    doc = DOC[mode]
    sig = [s.encode() for s in doc["chunks"]]
    body = (
        b"10000;chunk-signature=" + sig[0] + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + sig[1] + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + sig[2] + b"\r\n" + doc["tail"]
    )
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": mode.value,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={doc['signed_headers']},Signature={doc['seed']}",
    }
    if mode is SIGNED_TRAILER:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
    return headers, body


def doc_auth(mode: PayloadMode) -> AuthContext:
    headers, _ = doc_request(mode)
    credentials = Credentials([Credential("AKIAIOSFODNN7EXAMPLE", DOC_SECRET)])
    return authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers, credentials, now=DOC_NOW)


@pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER])
def test_aws_documented_streaming_example(mode):
    auth = doc_auth(mode)
    assert auth.seed_signature == DOC[mode]["seed"]
    _, body = doc_request(mode)
    if mode is SIGNED:
        assert len(body) == 66824  # the documented Content-Length
    data, trailers = decode(auth, body, cuts=[1, 100, 65600, 66000])
    assert data == DOC_PAYLOAD
    assert trailers == ({"x-amz-checksum-crc32c": "sOO8/Q=="} if mode is SIGNED_TRAILER else {})


def test_encoder_reproduces_the_documented_bodies():
    assert encode_signed(doc_auth(SIGNED), DOC_PAYLOAD, 65536) == doc_request(SIGNED)[1]
    trailers = [("x-amz-checksum-crc32c", checksum_of("crc32c", DOC_PAYLOAD))]
    assert trailers[0][1] == "sOO8/Q=="
    assert encode_signed(doc_auth(SIGNED_TRAILER), DOC_PAYLOAD, 65536, trailers) == doc_request(SIGNED_TRAILER)[1]


# --- botocore's encoder (STREAMING-UNSIGNED-PAYLOAD-TRAILER) ---------------------------------------------

BOTOCORE_CHECKSUMS = {
    "crc32": Crc32Checksum,
    "crc32c": CrtCrc32cChecksum,
    "crc64nvme": CrtCrc64NvmeChecksum,
    "sha1": Sha1Checksum,
    "sha256": Sha256Checksum,
}


def botocore_body(payload: bytes, algorithm: str = "crc32", chunk_size: int | None = None) -> bytes:
    wrapper = AwsChunkedWrapper(
        io.BytesIO(payload),
        checksum_cls=BOTOCORE_CHECKSUMS[algorithm],
        checksum_name=f"x-amz-checksum-{algorithm}",
        chunk_size=chunk_size,
    )
    return wrapper.read()


@pytest.mark.parametrize("algorithm", sorted(BOTOCORE_CHECKSUMS))
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 4096])
def test_botocore_unsigned_trailer_body(algorithm, chunk_size):
    payload = bytes(range(256)) * 40 + b"tail"
    body = botocore_body(payload, algorithm, chunk_size)
    data, trailers = decode(streaming_auth(UNSIGNED_TRAILER), body, cuts=[3, 500])
    assert data == payload
    assert trailers == {f"x-amz-checksum-{algorithm}": checksum_of(algorithm, payload)}


def test_encoder_matches_botocore_for_unsigned_trailer():
    payload = b"0123456789" * 1000
    expected = botocore_body(payload, "crc32", 999)
    assert encode_unsigned(payload, 999, [("x-amz-checksum-crc32", checksum_of("crc32", payload))]) == expected


def test_botocore_empty_body():
    body = botocore_body(b"", "crc32")
    assert decode(streaming_auth(UNSIGNED_TRAILER), body) == (b"", {"x-amz-checksum-crc32": "AAAAAA=="})


# --- incremental decoding ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(STREAMING_MODES),
    payload=st.binary(max_size=3000),
    chunk_size=st.integers(1, 700),
    data=st.data(),
)
def test_any_split_decodes_the_same(mode, payload, chunk_size, data):
    auth = streaming_auth(mode)
    body = encode(mode, auth, payload, chunk_size)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    decoded, trailers = decode(auth, body, cuts)
    assert decoded == payload
    if mode is SIGNED:
        assert trailers == {}
    else:
        assert trailers == {"x-amz-checksum-crc32": checksum_of("crc32", payload)}


@pytest.mark.parametrize("mode", STREAMING_MODES)
def test_one_byte_feeds(mode):
    auth = streaming_auth(mode)
    payload = bytes(range(256)) * 3
    body = encode(mode, auth, payload, 100)
    decoded, _ = decode(auth, body, cuts=list(range(len(body))))
    assert decoded == payload


def test_signed_chunk_is_released_only_when_complete():
    auth = streaming_auth(SIGNED)
    body = encode_signed(auth, b"x" * 1000, 1000)
    decoder = AwsChunkedDecoder(auth)
    assert decoder.feed(body[:900]) == []
    assert b"".join(decoder.feed(body[900:])) == b"x" * 1000
    assert decoder.finish() == {}


def test_unsigned_chunks_stream_through_without_a_size_cap():
    # No signature to wait for, so nothing is buffered: a chunk larger than the
    # signed-mode cap passes piece by piece.
    decoder = AwsChunkedDecoder(streaming_auth(UNSIGNED_TRAILER))
    size = MAX_CHUNK + 1024
    assert decoder.feed(f"{size:x}\r\n".encode()) == []
    piece = b"z" * (1024 * 1024)
    received = 0
    while received < size:
        step = piece[: size - received]
        assert decoder.feed(step) == [step]
        received += len(step)
    decoder.feed(b"\r\n0\r\n\r\n")
    assert decoder.finish() == {}


# --- signature failures -----------------------------------------------------------------------------------


def _three_chunks(auth: AuthContext, trailers=None) -> bytes:
    return encode_signed(auth, b"A" * 100 + b"B" * 100 + b"C" * 100, 100, trailers)


@pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER])
def test_flipped_byte_in_a_middle_chunk_is_refused_before_later_chunks(mode):
    auth = streaming_auth(mode)
    trailers = [("x-amz-checksum-crc32", "AAAAAA==")] if mode is SIGNED_TRAILER else None
    body = bytearray(_three_chunks(auth, trailers))
    body[body.index(b"B" * 100) + 50] ^= 0x01
    decoder = AwsChunkedDecoder(auth)
    received = []
    with pytest.raises(S3Error) as info:
        for i in range(len(body)):
            received.extend(decoder.feed(bytes(body[i : i + 1])))
    assert info.value.code == "SignatureDoesNotMatch"
    assert "chunk 2" in info.value.message
    assert b"".join(received) == b"A" * 100

    with pytest.raises(S3Error):
        AwsChunkedDecoder(auth).feed(bytes(body))  # all at once: the call raises, nothing is returned


def test_a_refused_decoder_stays_refused():
    auth = streaming_auth(SIGNED)
    decoder = AwsChunkedDecoder(auth)
    with pytest.raises(S3Error):
        decoder.feed(b"zz\r\n")
    good = encode_signed(auth, b"data", 4)
    for attempt in (lambda: decoder.feed(good), decoder.finish):
        with pytest.raises(S3Error) as info:
            attempt()
        assert "bad chunk size" in info.value.message


def test_dropped_or_reordered_chunks_break_the_chain():
    auth = streaming_auth(SIGNED)
    body = _three_chunks(auth)
    frames = body.split(b"\r\n")  # size line, data, size line, data, ...
    frame_a, frame_b, frame_c = (b"\r\n".join(frames[i : i + 2]) + b"\r\n" for i in (0, 2, 4))
    rest = b"\r\n".join(frames[6:])
    assert frame_a + frame_b + frame_c + rest == body
    refused(auth, frame_a + frame_c + rest, "SignatureDoesNotMatch")
    refused(auth, frame_b + frame_a + frame_c + rest, "SignatureDoesNotMatch")
    refused(auth, frame_a + frame_b + rest, "SignatureDoesNotMatch")


def test_bad_final_chunk_signature():
    auth = streaming_auth(SIGNED)
    body = _three_chunks(auth)
    marker = b"0;chunk-signature="
    at = body.index(marker) + len(marker)
    tampered = body[:at] + (b"0" if body[at : at + 1] != b"0" else b"1") + body[at + 1 :]
    refused(auth, tampered, "SignatureDoesNotMatch")


def test_chunks_signed_with_another_seed_are_refused():
    auth = streaming_auth(SIGNED)
    other = streaming_auth(SIGNED_TRAILER)  # same key and date, different seed signature
    refused(auth, encode_signed(other, b"data", 2), "SignatureDoesNotMatch")


def test_bad_trailer_signature():
    auth = streaming_auth(SIGNED_TRAILER)
    body = _three_chunks(auth, [("x-amz-checksum-crc32", "AAAAAA==")])
    at = body.index(b"x-amz-trailer-signature:") + len("x-amz-trailer-signature:")
    flipped = body[:at] + (b"f" if body[at : at + 1] != b"f" else b"e") + body[at + 1 :]
    refused(auth, flipped, "SignatureDoesNotMatch")


def test_trailer_value_changed_after_signing():
    auth = streaming_auth(SIGNED_TRAILER)
    body = _three_chunks(auth, [("x-amz-checksum-crc32", "AAAAAA==")])
    refused(auth, body.replace(b"AAAAAA==", b"AAAAAQ=="), "SignatureDoesNotMatch")


def test_trailer_added_after_signing():
    auth = streaming_auth(SIGNED_TRAILER)
    body = _three_chunks(auth, [("x-amz-checksum-crc32", "AAAAAA==")])
    extra = body.replace(b"x-amz-trailer-signature:", b"x-amz-meta-extra:1\r\nx-amz-trailer-signature:")
    refused(auth, extra, "SignatureDoesNotMatch")


def test_missing_trailer_signature():
    auth = streaming_auth(SIGNED_TRAILER)
    body = _three_chunks(auth, [("x-amz-checksum-crc32", "AAAAAA==")])
    start = body.index(b"x-amz-trailer-signature:")
    refused(auth, body[:start] + b"\r\n", "SignatureDoesNotMatch")


def test_signed_trailer_canonical_form_sorts_names():
    auth = streaming_auth(SIGNED_TRAILER)
    trailers = [("x-amz-checksum-sha1", checksum_of("sha1", b"")), ("x-amz-a", "1")]
    body = encode_signed(auth, b"", 1, sorted(trailers))
    # The same trailers sent in another order still verify (the canonical block is sorted).
    lines = body.split(b"\r\n")
    swapped = b"\r\n".join([lines[0], lines[2], lines[1], *lines[3:]])
    assert decode(auth, swapped)[1] == dict(trailers)


# --- framing errors -----------------------------------------------------------------------------------


def test_truncated_stream_is_incomplete_at_every_cut():
    for mode in STREAMING_MODES:
        auth = streaming_auth(mode)
        body = encode(mode, auth, b"hello world, hello chunks", 10)
        for cut in range(len(body)):
            if mode is SIGNED and cut == len(body) - 2:
                continue  # only the final CRLF missing: every byte was verified, accepted (see below)
            decoder = AwsChunkedDecoder(auth)
            decoder.feed(body[:cut])
            with pytest.raises(S3Error) as info:
                decoder.finish()
            assert info.value.code == "IncompleteBody", (mode, cut)


def test_missing_final_crlf_after_signed_zero_chunk_is_tolerated():
    auth = streaming_auth(SIGNED)
    body = encode_signed(auth, b"payload", 4)
    assert decode(auth, body[:-2]) == (b"payload", {})


def test_size_line_longer_than_limit_is_refused_without_waiting_for_its_end():
    for mode in STREAMING_MODES:
        decoder = AwsChunkedDecoder(streaming_auth(mode))
        with pytest.raises(S3Error) as info:
            decoder.feed(b"1" + b";" * (MAX_LINE + 10))
        assert info.value.code == "InvalidRequest"
        assert "longer than" in info.value.message


def test_size_line_at_the_limit_is_only_a_format_error():
    decoder = AwsChunkedDecoder(streaming_auth(SIGNED))
    line = b"1;chunk-signature=" + b"a" * (MAX_LINE - 18)
    assert len(line) == MAX_LINE
    with pytest.raises(S3Error) as info:
        decoder.feed(line + b"\r\n")
    assert info.value.code == "SignatureDoesNotMatch"
    assert "malformed" in info.value.message


def test_malformed_chunk_signature_is_refused_before_the_data():
    decoder = AwsChunkedDecoder(streaming_auth(SIGNED))
    with pytest.raises(S3Error) as info:
        decoder.feed(f"{MAX_CHUNK:x};chunk-signature={'A' * 64}\r\n".encode())
    assert info.value.code == "SignatureDoesNotMatch"


def test_signed_chunk_over_16_mib_is_refused():
    auth = streaming_auth(SIGNED)
    refused(auth, f"{MAX_CHUNK + 1:x};chunk-signature={'0' * 64}\r\n".encode(), "InvalidRequest")


def test_trailer_section_over_limit_is_refused():
    auth = streaming_auth(UNSIGNED_TRAILER)
    refused(auth, b"0\r\nx-amz-meta-big:" + b"v" * MAX_TRAILER + b"\r\n\r\n", "InvalidRequest")
    many = b"".join(b"x-amz-meta-%d:%s\r\n" % (i, b"v" * 100) for i in range(200))
    error = refused(auth, b"0\r\n" + many + b"\r\n", "InvalidRequest")
    assert "trailer section" in error.message


@pytest.mark.parametrize(
    "line", [b"zz", b"-1", b"0x10", b" 10", b"10 ", b"", b"1" * 17, b"\xff", b"10;chunk-signature"]
)
def test_bad_chunk_size(line):
    refused(streaming_auth(UNSIGNED_TRAILER), line + b"\r\nxxxxxxxxxxxxxxxx\r\n0\r\n\r\n", "InvalidRequest")


def test_signed_mode_requires_chunk_signature():
    refused(streaming_auth(SIGNED), b"4\r\ndata\r\n0\r\n\r\n", "InvalidRequest")
    refused(streaming_auth(SIGNED), b"4;x=y\r\ndata\r\n", "InvalidRequest")


def test_chunk_data_must_be_followed_by_crlf():
    auth = streaming_auth(UNSIGNED_TRAILER)
    error = refused(auth, b"4\r\ndataX\r\n0\r\n\r\n", "InvalidRequest")
    assert "CRLF" in error.message
    body = encode_signed(streaming_auth(SIGNED), b"data", 4)
    refused(streaming_auth(SIGNED), body.replace(b"\r\n0;", b"\n\n0;"), "InvalidRequest")


def test_lines_must_end_with_crlf():
    refused(streaming_auth(UNSIGNED_TRAILER), b"4\ndata\r\n0\r\n\r\n", "InvalidRequest")
    refused(streaming_auth(UNSIGNED_TRAILER), b"0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n", "InvalidRequest")


def test_bad_trailer_lines():
    auth = streaming_auth(UNSIGNED_TRAILER)
    refused(auth, b"0\r\nno colon here\r\n\r\n", "InvalidRequest")
    refused(auth, b"0\r\n:value\r\n\r\n", "InvalidRequest")
    refused(auth, b"0\r\na:1\r\na:2\r\n\r\n", "InvalidRequest")


def test_trailer_names_are_lower_cased_and_values_trimmed():
    auth = streaming_auth(UNSIGNED_TRAILER)
    assert decode(auth, b"0\r\nX-Amz-Checksum-CRC32:  AAAAAA== \r\n\r\n")[1] == {"x-amz-checksum-crc32": "AAAAAA=="}


@pytest.mark.parametrize("mode", STREAMING_MODES)
def test_data_after_the_end_is_refused(mode):
    auth = streaming_auth(mode)
    body = encode(mode, auth, b"payload", 3)
    refused(auth, body + b"extra", "InvalidRequest")
    decoder = AwsChunkedDecoder(auth)
    decoder.feed(body)
    with pytest.raises(S3Error):
        decoder.feed(b"\r\n")


def test_after_signed_zero_chunk_only_crlf_may_follow():
    auth = streaming_auth(SIGNED)
    body = encode_signed(auth, b"payload", 3)
    refused(auth, body[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n", "InvalidRequest")


def test_non_streaming_modes_have_no_decoder():
    auth = streaming_auth(SIGNED)
    for mode in (PayloadMode.UNSIGNED, PayloadMode.SHA256):
        with pytest.raises(ValueError):
            AwsChunkedDecoder(AuthContext(**{**auth.__dict__, "payload_mode": mode}))
