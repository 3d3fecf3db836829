"""The multipart/form-data body of a browser form upload (POST Object), read as it streams.

S3 reads a form upload in order: the fields first, then the part named ``file``, whose bytes
are the object; whatever follows the file is ignored. So the fields are read into memory
(at most MAX_FIELDS_BYTES of body, S3's limit), the file is handed on as a stream and never
held whole. The body is parsed by aiohttp's MultipartReader, reading through FormStream,
which bounds each wait for the client exactly as idle_bounded does for other bodies (idle
timeout, minimum rate), so a stalled form cannot hold its handler forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from s4.config import LimitsConfig
from s4.server.errors import S3Error
from s4.server.limits import BodyRate, malformed_body, request_timeout

MAX_FIELDS_BYTES = 20 * 1024
"""Body bytes before the file (fields and their part headers) S3 reads at most."""
FILE_CHUNK = 256 * 1024
FILE_FIELD = "file"


def malformed_form() -> S3Error:
    return S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")


@contextlib.contextmanager
def _parsing() -> Iterator[None]:
    """aiohttp's multipart reader says what it cannot parse with ValueError (or its HTTP errors)."""
    try:
        yield
    except (ValueError, AssertionError, HttpProcessingError):
        raise malformed_form() from None


class FormStream:
    """``request.content`` as MultipartReader reads it (read, readline, at_eof, unread_data), with
    every wait for the client bounded by the idle timeout and the minimum body rate, and the bytes
    taken so far counted (``consumed``). Bytes handed back are kept here, not pushed into aiohttp's
    buffer (StreamReader.unread_data is deprecated)."""

    def __init__(self, source, timeout: float, rate: BodyRate) -> None:
        self._source = source
        self._timeout = timeout
        self._rate = rate
        self._pending = bytearray()
        self.consumed = 0

    async def _wait(self, call: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._source.at_eof():
            # All of the body is in: no wait. (aiohttp warns when read at its end again and again,
            # which the multipart reader does once per part when the parts came in one piece.)
            return b""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(min(self._timeout, self._rate.budget())):
                data = await call()
        except TimeoutError:
            raise request_timeout() from None
        except HttpProcessingError as exc:
            raise malformed_body(exc) from None
        self._rate.record(len(data), loop.time() - started)
        self.consumed += len(data)
        return data

    def _take(self, size: int) -> bytes:
        data = bytes(self._pending[:size])
        del self._pending[:size]
        self.consumed += len(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        if self._pending:
            return self._take(len(self._pending) if n < 0 else n)
        return await self._wait(lambda: self._source.read(n))

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        if self._pending:
            end = self._pending.find(b"\n")
            if end >= 0:
                return self._take(end + 1)
            head = self._take(len(self._pending))
            return head + await self._wait(lambda: self._source.readline(max_line_length=max_line_length))
        return await self._wait(lambda: self._source.readline(max_line_length=max_line_length))

    def at_eof(self) -> bool:
        return not self._pending and self._source.at_eof()

    def unread_data(self, data: bytes) -> None:
        self._pending[:0] = data
        self.consumed -= len(data)


class FormFile:
    """The ``file`` part: its file name (for ``${filename}``) and its bytes, read as they arrive."""

    def __init__(self, part: BodyPartReader) -> None:
        self._part = part
        self.filename = part.filename or ""

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self._part.at_eof():
            with _parsing():
                chunk = await self._part.read_chunk(FILE_CHUNK)
            if chunk:
                yield chunk


def _check_enclosure(request: web.Request) -> None:
    mimetype = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if (mimetype.type, mimetype.subtype) != ("multipart", "form-data"):
        raise S3Error(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            extra={"Condition": "Bucket POST must be of the enclosure-type multipart/form-data"},
        )


def _too_long() -> S3Error:
    return S3Error(
        "MaxPostPreDataLengthExceededError",
        "Your POST request fields preceding the upload file were too large.",
        extra={"MaxPostPreDataLength": str(MAX_FIELDS_BYTES)},
    )


async def _field_value(part: BodyPartReader, stream: FormStream) -> str:
    value = bytearray()
    while not part.at_eof():
        with _parsing():
            value += await part.read_chunk(4096)
        if stream.consumed > MAX_FIELDS_BYTES:
            raise _too_long()
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed_form() from None


async def read_form(request: web.Request, limits: LimitsConfig) -> tuple[dict[str, str], FormFile | None]:
    """The form's fields before its file, by lower-case name (S3 matches names case-insensitively),
    and the file part, ready to stream; None when the form ends without one.

    A field given twice is refused: which of the two a policy check and the store would each take
    is exactly the kind of doubt a signed policy must not leave.
    """
    _check_enclosure(request)
    rate = BodyRate(limits.min_body_rate, limits.min_body_rate_window)
    stream = FormStream(request.content, limits.idle_timeout, rate)
    with _parsing():
        reader = MultipartReader(request.headers, stream)  # type: ignore[arg-type]
    fields: dict[str, str] = {}
    while True:
        with _parsing():
            part = await reader.next()
        if stream.consumed > MAX_FIELDS_BYTES:
            raise _too_long()
        if part is None:
            return fields, None
        if not isinstance(part, BodyPartReader) or not part.name:
            raise malformed_form()
        name = part.name.lower()
        if name == FILE_FIELD:
            return fields, FormFile(part)
        value = await _field_value(part, stream)
        if name in fields:
            raise S3Error(
                "InvalidArgument",
                f"The form field {name} appears more than once.",
                extra={"ArgumentName": name, "ArgumentValue": value},
            )
        fields[name] = value
