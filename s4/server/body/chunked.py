"""Incremental decoder for aws-chunked request bodies (SigV4 streaming uploads).

Signed modes carry a signature per chunk, chained from the request's own signature, so
a body altered in flight is refused chunk by chunk; the decoder releases a chunk's bytes
only after its signature checks out, which means nothing after a bad chunk is ever
accepted. Unsigned-trailer mode has no chunk signatures (TLS and the trailing checksum
protect it), so its bytes pass through as they arrive.

Memory stays bounded: one chunk in signed modes (chunks are capped), one framing line
otherwise, whatever the size of the body.
"""

from __future__ import annotations

import enum
import hashlib
import re

from s4.server.auth.sigv4 import EMPTY_SHA256, AuthContext, PayloadMode, sign, signatures_equal
from s4.server.errors import S3Error

MAX_LINE = 4096
MAX_CHUNK = 16 * 1024 * 1024
MAX_TRAILER = 16 * 1024
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_CRLF = b"\r\n"
_HEX_SIZE = re.compile(r"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_EXTENSION = "chunk-signature="


class _State(enum.Enum):
    SIZE = "chunk-size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILER = "trailer"
    FINAL = "final CRLF"
    DONE = "end"


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {message}")


def chunk_string_to_sign(auth: AuthContext, previous: str, data_sha256: str) -> str:
    return "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, previous, EMPTY_SHA256, data_sha256))


def trailer_string_to_sign(auth: AuthContext, previous: str, trailers: list[tuple[str, str]]) -> str:
    return "\n".join(
        ("AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, previous, canonical_trailer_sha256(trailers))
    )


def canonical_trailer_sha256(trailers: list[tuple[str, str]]) -> str:
    """SHA-256 of the trailers as the SDKs sign them: 'name:value\\n' per trailer, names sorted."""
    block = "".join(f"{name}:{value}\n" for name, value in sorted(trailers, key=lambda item: item[0]))
    return hashlib.sha256(block.encode("utf-8")).hexdigest()


class AwsChunkedDecoder:
    """Push-style decoder: feed() raw body bytes, get decoded payload pieces back."""

    def __init__(self, auth: AuthContext) -> None:
        if not auth.payload_mode.streaming:
            raise ValueError(f"{auth.payload_mode.value} is not an aws-chunked payload mode")
        self._auth = auth
        self._signed = auth.payload_mode.signed_chunks
        self._trailer_signed = auth.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER
        self._previous = auth.seed_signature
        self._state = _State.SIZE
        self._line = bytearray()
        self._remaining = 0
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._pieces: list[bytes] = []
        self._chunks = 0
        self._trailers: list[tuple[str, str]] = []
        self._trailer_names: set[str] = set()  # the duplicate check stays O(1) through a 16 KiB flood
        self._trailer_bytes = 0
        self._trailer_signature: str | None = None
        self._failure: S3Error | None = None

    # --- public -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[bytes]:
        """Decoded bytes completed by ``data``; in signed modes, only from verified chunks."""
        if self._failure is not None:
            raise self._failure
        try:
            return self._feed(data)
        except S3Error as error:
            # The parser state is meaningless after a refusal; keep refusing rather than resync.
            self._failure = error
            raise

    def _feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            if self._state is _State.DATA:
                pos = self._take_data(data, pos, out)
            elif self._state is _State.DATA_END:
                pos = self._take_data_end(data, pos)
            elif self._state is _State.DONE:
                raise _invalid("data after the end of the body")
            else:
                pos = self._take_line(data, pos)
        return out

    def finish(self) -> dict[str, str]:
        """The trailers (lower-case names, trailer signature left out); raise if the body stopped early."""
        if self._failure is not None:
            raise self._failure
        if self._state is _State.FINAL and not self._line:
            # Some encoders end after the zero chunk's line; every byte was already verified.
            self._state = _State.DONE
        if self._state is not _State.DONE:
            raise S3Error(
                "IncompleteBody",
                f"The request body terminated unexpectedly (aws-chunked body ended in its {self._state.value}).",
            )
        return dict(self._trailers)

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    # --- chunk data -----------------------------------------------------------------------------

    def _take_data(self, data: bytes, pos: int, out: list[bytes]) -> int:
        take = min(self._remaining, len(data) - pos)
        piece = data[pos : pos + take]
        self._remaining -= take
        if self._signed:
            self._chunk_hash.update(piece)
            self._pieces.append(piece)
        else:
            out.append(piece)
        if self._remaining == 0:
            self._state = _State.DATA_END
            if self._signed:
                self._verify_chunk(self._chunk_hash.hexdigest())
                out.extend(self._pieces)
                self._pieces = []
        return pos + take

    def _take_data_end(self, data: bytes, pos: int) -> int:
        take = min(2 - len(self._line), len(data) - pos)
        self._line += data[pos : pos + take]
        if len(self._line) == 2:
            if self._line != _CRLF:
                raise _invalid(f"chunk {self._chunks} is not followed by CRLF (wrong chunk size?)")
            self._line.clear()
            self._state = _State.SIZE
        return pos + take

    # --- lines ------------------------------------------------------------------------------------

    def _line_limit(self) -> int:
        """Bytes the current line may take, its CRLF included."""
        if self._state is _State.TRAILER:
            return MAX_TRAILER - self._trailer_bytes
        return MAX_LINE + 2

    def _take_line(self, data: bytes, pos: int) -> int:
        newline = data.find(b"\n", pos)
        stop = len(data) if newline < 0 else newline + 1
        if len(self._line) + stop - pos > self._line_limit():
            raise self._too_long()
        self._line += data[pos:stop]
        if newline >= 0:
            if not self._line.endswith(_CRLF):
                raise _invalid(f"the {self._state.value} does not end with CRLF")
            line = bytes(self._line[:-2])
            self._line.clear()
            self._on_line(line)
        return stop

    def _too_long(self) -> S3Error:
        if self._state is _State.TRAILER:
            return _invalid(f"the trailer section is longer than {MAX_TRAILER} bytes")
        return _invalid(f"the {self._state.value} is longer than {MAX_LINE} bytes")

    def _on_line(self, line: bytes) -> None:
        if self._state is _State.SIZE:
            self._on_size_line(line)
        elif self._state is _State.TRAILER:
            self._on_trailer_line(line)
        elif line:
            raise _invalid("unexpected data after the final chunk")
        else:
            self._state = _State.DONE

    # --- chunk headers ----------------------------------------------------------------------------

    def _on_size_line(self, line: bytes) -> None:
        size, signature = self._parse_size_line(line)
        self._chunks += 1
        self._chunk_signature = signature
        if size == 0:
            if self._signed:
                self._verify_chunk(EMPTY_SHA256)
            self._state = _State.TRAILER if self._auth.payload_mode.has_trailer else _State.FINAL
            return
        if self._signed and size > MAX_CHUNK:
            raise _invalid(f"chunk {self._chunks} is {size} bytes; signed chunks may be at most {MAX_CHUNK}")
        self._remaining = size
        self._chunk_hash = hashlib.sha256()
        self._state = _State.DATA

    def _parse_size_line(self, line: bytes) -> tuple[int, str]:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise _invalid("the chunk-size line is not ASCII") from None
        size_text, sep, extension = text.partition(";")
        if not _HEX_SIZE.fullmatch(size_text):
            raise _invalid(f"bad chunk size {size_text[:40]!r}")
        if not self._signed:
            if sep:
                raise _invalid("chunk extensions are not allowed in STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies")
            return int(size_text, 16), ""
        if not extension.startswith(_SIGNATURE_EXTENSION):
            raise _invalid(f"chunk {self._chunks + 1} has no chunk-signature")
        signature = extension[len(_SIGNATURE_EXTENSION) :]
        if not _SIGNATURE.fullmatch(signature):
            # It could never match; refuse now rather than after buffering the chunk.
            raise S3Error("SignatureDoesNotMatch", f"The chunk-signature of chunk {self._chunks + 1} is malformed.")
        return int(size_text, 16), signature

    def _verify_chunk(self, data_sha256: str) -> None:
        expected = sign(self._auth.signing_key, chunk_string_to_sign(self._auth, self._previous, data_sha256))
        if not signatures_equal(expected, self._chunk_signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"The chunk signature of chunk {self._chunks} does not match the signature we calculated "
                "from the chunk data and the previous signature.",
            )
        self._previous = expected

    # --- trailers ---------------------------------------------------------------------------------

    def _on_trailer_line(self, line: bytes) -> None:
        self._trailer_bytes += len(line) + 2
        if not line:
            self._end_trailers()
            return
        name, value = self._parse_trailer(line)
        if self._trailer_signature is not None:
            raise _invalid("x-amz-trailer-signature must be the last trailer")
        if name == TRAILER_SIGNATURE:
            self._trailer_signature = value
        elif name in self._trailer_names:
            raise _invalid(f"trailer {name} appears twice")
        else:
            self._trailer_names.add(name)
            self._trailers.append((name, value))

    @staticmethod
    def _parse_trailer(line: bytes) -> tuple[str, str]:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("a trailer is not valid UTF-8") from None
        name, sep, value = text.partition(":")
        name = name.strip().lower()
        if not sep or not name:
            raise _invalid(f"bad trailer line {text[:80]!r}")
        return name, value.strip()

    def _end_trailers(self) -> None:
        if self._trailer_signed:
            self._verify_trailer()
        self._state = _State.DONE

    def _verify_trailer(self) -> None:
        if self._trailer_signature is None:
            raise S3Error("SignatureDoesNotMatch", "The aws-chunked trailer carries no x-amz-trailer-signature.")
        expected = sign(self._auth.signing_key, trailer_string_to_sign(self._auth, self._previous, self._trailers))
        if not signatures_equal(expected, self._trailer_signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The x-amz-trailer-signature does not match the signature we calculated from the trailers.",
            )
