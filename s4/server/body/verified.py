"""The verified request body of a PUT or UploadPart: decoded, measured and digest-checked.

Every check that needs the whole body (length, Content-MD5, x-amz-content-sha256, the
flexible checksum) runs after the last byte and raises *before* the iterator stops. A
store that commits only once it has exhausted the iterator therefore never commits a
body that failed a check: it sees the exception instead of the end.

What a consumer has received when an error is raised:

* header problems (malformed Content-MD5 or checksum header, unsupported x-amz-trailer,
  a declared length over ``max_size``) are raised by the constructor, before any byte;
* a bad chunk signature or malformed aws-chunked framing: every byte of the chunks before
  the bad one (all verified), nothing of the bad chunk or after it;
* EntityTooLarge: the first ``max_size`` bytes at most, never the byte that went over;
* a body longer than its declared length: at most the declared length;
* every end-of-body check (short body, BadDigest, XAmzContentSHA256Mismatch, a missing or
  wrong trailer): the whole decoded body, then the exception instead of StopAsyncIteration.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from s4.digits import decimal
from s4.server.auth.sigv4 import AuthContext, PayloadMode
from s4.server.body.checksums import (
    CHECKSUM_HEADER_PREFIX,
    BodyDigests,
    display_name,
    header_name,
    requested_checksums,
    trailer_algorithm,
    valid_checksum_value,
)
from s4.server.body.chunked import AwsChunkedDecoder
from s4.server.errors import S3Error
from s4.server.headers import collect_headers, header_value

DEFAULT_MAX_SIZE = 5 * 1024**3


def _declared_length(collected: dict[str, list[str]], name: str) -> int | None:
    value = header_value(collected, name)
    if value is None:
        return None
    length = decimal(value.strip(), max_digits=20)
    if length is None:
        raise S3Error("InvalidArgument", f"The {name} header is not a valid length.", extra={"ArgumentName": name})
    return length


def _content_md5(collected: dict[str, list[str]]) -> bytes | None:
    value = header_value(collected, "content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def _too_large(max_size: int, size: int | None = None) -> S3Error:
    extra = {"MaxSizeAllowed": str(max_size)}
    if size is not None:
        extra["ProposedSize"] = str(size)
    return S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", extra=extra)


class VerifiedBody:
    """Async iterator over the decoded request body; raises S3Error at the end (before stopping) if any check failed."""

    def __init__(
        self,
        source: AsyncIterable[bytes],
        headers: Mapping[str, str],
        auth: AuthContext,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        header_checksums: bool = True,
    ) -> None:
        """``header_checksums`` False: the request's x-amz-checksum-<algorithm> header is not about this
        body (CompleteMultipartUpload's names the object's checksum), so it is left for the handler."""
        collected = collect_headers(headers)
        self._source = source
        self._auth = auth
        self._max_size = max_size
        self._streaming = auth.payload_mode.streaming
        length_header = "x-amz-decoded-content-length" if self._streaming else "content-length"
        self._length_header = length_header
        self._expected_size = _declared_length(collected, length_header)
        if self._expected_size is not None and self._expected_size > max_size:
            raise _too_large(max_size, self._expected_size)
        self._md5 = _content_md5(collected)
        self._header_checksums = requested_checksums(headers) if header_checksums else {}
        self._trailer_algorithm = self._check_trailer_declaration(trailer_algorithm(headers))
        algorithms = set(self._header_checksums)
        if self._trailer_algorithm is not None:
            algorithms.add(self._trailer_algorithm)
        self._digests = BodyDigests(
            sha256=auth.payload_mode is PayloadMode.SHA256, algorithms=sorted(algorithms), md5=self._md5 is not None
        )
        self._decoder = AwsChunkedDecoder(auth) if self._streaming else None
        self._started = False
        self._verified = False
        self.size = 0
        self.checksums: dict[str, str] = {}
        self.trailers: dict[str, str] = {}

    @property
    def expected_size(self) -> int | None:
        """The body's declared decoded length: lets a store size its frames before reading."""
        return self._expected_size

    @property
    def checksum_algorithm(self) -> str | None:
        """The flexible checksum this body is verified against (header or trailer), known before its
        first byte: a multipart store refuses a part of another algorithm than its upload's up front."""
        if self._trailer_algorithm is not None:
            return self._trailer_algorithm
        return next(iter(self._header_checksums), None)

    def _check_trailer_declaration(self, algorithm: str | None) -> str | None:
        if algorithm is None:
            return None
        mode = self._auth.payload_mode
        if not mode.has_trailer:
            raise S3Error(
                "InvalidRequest", f"x-amz-trailer is only valid with a trailing aws-chunked payload, not {mode.value}."
            )
        if self._header_checksums:
            raise S3Error(
                "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )
        return algorithm

    # --- results ------------------------------------------------------------------------------------

    @property
    def verified(self) -> bool:
        """True once the whole body was read and every check passed."""
        return self._verified

    # --- iteration ------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a request body can be read only once")
        self._started = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        async for data in self._source:
            pieces = self._decoder.feed(data) if self._decoder is not None else [data]
            for piece in pieces:
                if piece:
                    self._account(piece)
                    yield piece
        self.trailers = self._decoder.finish() if self._decoder is not None else {}
        self._verify()
        self._verified = True

    def _account(self, piece: bytes) -> None:
        """Count and digest one piece, refusing it if it takes the body past a limit."""
        size = self.size + len(piece)
        if size > self._max_size:
            raise _too_large(self._max_size)
        if self._expected_size is not None and size > self._expected_size:
            raise S3Error(
                "IncompleteBody",
                f"The request body is longer than its {self._length_header} of {self._expected_size} bytes.",
            )
        self.size = size
        self._digests.update(piece)

    # --- end-of-body checks ------------------------------------------------------------------------------

    def _verify(self) -> None:
        self._verify_length()
        self._verify_sha256()
        self._verify_md5()
        checksums = dict(self._header_checksums)
        checksums.update(self._trailer_checksum())
        for algorithm, expected in checksums.items():
            if self._digests.checksum(algorithm) != expected:
                raise S3Error(
                    "BadDigest", f"The {display_name(algorithm)} you specified did not match the calculated checksum."
                )
        # Filled in place: a caller may have handed this very dict to the store as the object's
        # checksums, to be read once the body has ended.
        self.checksums.update(checksums)

    def _verify_length(self) -> None:
        if self._expected_size is not None and self.size != self._expected_size:
            raise S3Error(
                "IncompleteBody",
                f"You did not provide the number of bytes specified by the {self._length_header} HTTP header "
                f"({self._expected_size} declared, {self.size} received).",
            )

    def _verify_sha256(self) -> None:
        expected = self._auth.payload_sha256
        if self._auth.payload_mode is not PayloadMode.SHA256 or expected is None:
            return
        computed = self._digests.sha256_hex
        if computed != expected:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                extra={"ClientComputedContentSHA256": expected, "S3ComputedContentSHA256": computed},
            )

    def _verify_md5(self) -> None:
        if self._md5 is not None and self._md5.hex() != self._digests.md5_hex:
            raise S3Error(
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
                extra={"ExpectedDigest": base64.b64encode(self._md5).decode("ascii")},
            )

    def _trailer_checksum(self) -> dict[str, str]:
        """The declared trailing checksum, validated; undeclared checksum trailers are refused, not ignored."""
        for name in self.trailers:
            if name.startswith(CHECKSUM_HEADER_PREFIX) and (
                self._trailer_algorithm is None or name != header_name(self._trailer_algorithm)
            ):
                raise S3Error("InvalidRequest", f"The trailer {name} was not declared in x-amz-trailer.")
        algorithm = self._trailer_algorithm
        if algorithm is None:
            return {}
        name = header_name(algorithm)
        value = self.trailers.get(name)
        if value is None:
            raise S3Error("InvalidRequest", f"x-amz-trailer declared {name}, but the body carried no such trailer.")
        if not valid_checksum_value(algorithm, value):
            raise S3Error("InvalidRequest", f"Value for {name} trailing header is invalid.")
        return {algorithm: value}
