"""A fault-injecting ObjectStore for tests: it fails, hangs or truncates at the Nth call or byte.

``FaultyStore`` wraps any ObjectStore and passes every call through, recording it, until
the call its armed ``Fault`` names. There it fails (a ``StoreError`` with a backend code,
or a ``ConnectionResetError`` as a dead upstream raises), hangs (awaits a future that only
``time_out_hangs`` completes, as a backend's own timeout would; otherwise only cancellation
ends it), or, inside a streamed body, truncates (the body ends early without an error, as a
broken peer or backend would). Streamed bodies are those put_object and upload_part read
and those get_object hands out.

The intended use is exhaustive: run an operation once with no fault armed, read the
trace of ``calls`` (methods, and the bytes each streamed body carried), derive every
injection point from it with ``injection_points``, then run the operation once per point.
A fault fires at most once, so the store is healthy again right after it, which is what
lets a test check that the gateway recovers (retries work, leftovers are cleaned).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from s4.store.base import (
    BucketInfo,
    ByteRange,
    CompletionChecksums,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    ObjectStream,
    PartInfo,
    PartsPage,
    StoreError,
    UploadChecksum,
    UploadsPage,
    WriteCondition,
)

T = TypeVar("T")


class FaultKind(enum.Enum):
    ERROR = "error"
    """A StoreError with a backend code (InternalError): the backend answered, with a failure."""
    DISCONNECT = "disconnect"
    """ConnectionResetError: the backend went away mid-conversation."""
    HANG = "hang"
    """Does not return: the backend stopped answering. Cancellation ends the wait, or the test
    plays the backend's own timeout (``time_out_hangs``), which then fails the call."""
    TRUNCATE = "truncate"
    """Only inside a streamed body: it ends early, without any error."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """Where and how the store misbehaves, once.

    ``call`` counts 1-based among the calls of ``method`` (all calls when ``method`` is
    None). With ``byte`` None the call itself fails before reaching the inner store; with
    ``byte`` set, the call's streamed body misbehaves once ``byte`` bytes have passed.
    """

    kind: FaultKind
    call: int
    method: str | None = None
    byte: int | None = None
    code: str = "InternalError"
    """The StoreError code of an ERROR fault."""

    def __post_init__(self) -> None:
        if self.kind is FaultKind.TRUNCATE and self.byte is None:
            raise ValueError("a truncation happens inside a body: give the byte it happens after")

    def label(self) -> str:
        where = f"{self.method or 'call'}#{self.call}" + ("" if self.byte is None else f"@{self.byte}")
        return f"{self.kind.value}:{where}"


@dataclasses.dataclass
class Call:
    """One call the store received, as the trace records it."""

    index: int
    """1-based position among all calls."""
    method: str
    args: tuple[Any, ...]
    chunks: list[int] | None = None
    """Sizes of the chunks of the call's streamed body so far (None: the call streams nothing)."""
    ended: bool = False
    """The streamed body was read to its end (a reader may stop early: a Range GET does)."""

    @property
    def streamed(self) -> int | None:
        return None if self.chunks is None else sum(self.chunks)


def injection_points(
    calls: Sequence[Call],
    kinds: Sequence[FaultKind],
    max_bytes_points: int = 6,
    boundaries: Mapping[int, Iterable[int]] | None = None,
) -> list[Fault]:
    """Every fault of ``kinds`` a clean trace suggests: at each call, and inside each streamed body.

    Byte positions are 0 (nothing passed), just after the first byte, each chunk boundary and
    the byte after it, the last byte and the very end (everything passed, then the fault
    instead of the end), thinned to ``max_bytes_points`` per body keeping both ends; plus
    the ``boundaries`` a test knows matter for a call (by call index: frame boundaries, say),
    never thinned. The very end is left out where the reader never asked for it, and for
    truncations (ending at the end is no fault).
    """
    faults: list[Fault] = []
    for call in calls:
        for kind in kinds:
            if kind is not FaultKind.TRUNCATE:
                faults.append(Fault(kind, call.index))
        if call.chunks is None:
            continue
        known = {b for b in (boundaries or {}).get(call.index, ()) if 0 <= b <= (call.streamed or 0)}
        for byte in sorted(known.union(byte_positions(call.chunks, max_bytes_points))):
            for kind in kinds:
                if byte == call.streamed and (kind is FaultKind.TRUNCATE or not call.ended):
                    continue
                faults.append(Fault(kind, call.index, byte=byte))
    return faults


def byte_positions(chunks: Sequence[int], limit: int) -> list[int]:
    """The ends of a body and its chunk boundaries, at most ``limit`` of them, spread evenly."""
    total = sum(chunks)
    positions = {0, min(1, total), max(total - 1, 0), total}
    offset = 0
    for size in chunks[:-1]:
        offset += size
        positions.update((offset, offset + 1))
    ordered = sorted(p for p in positions if 0 <= p <= total)
    if len(ordered) <= limit:
        return ordered
    step = (len(ordered) - 1) / (limit - 1)
    return sorted({ordered[round(i * step)] for i in range(limit)})


class FaultyStore:
    """An ObjectStore that passes calls to ``inner`` and misbehaves once, where its fault says.

    ``min_part_size`` overrides what the inner store reports, so a test can make the
    compressing store's Complete both copy staged parts and concatenate runs of small ones
    over a store that accepts any part size.
    """

    def __init__(self, inner: ObjectStore, *, min_part_size: int | None = None) -> None:
        self.inner = inner
        self._min_part_size = min_part_size
        self.calls: list[Call] = []
        self.fault: Fault | None = None
        self.fired: Fault | None = None
        """The fault once it has fired (it fires at most once)."""
        self.hanging = asyncio.Event()
        """Set when a HANG fault starts waiting: the test can then act (disconnect, serve others)."""
        self._matching = 0
        self._hang: asyncio.Future[None] | None = None

    # --- control -----------------------------------------------------------------------------------------

    def arm(self, fault: Fault | None) -> None:
        """Fault (or None: no fault) for the calls from now on, with a fresh trace."""
        self.fault = fault
        self.fired = None
        self.calls = []
        self._matching = 0
        self.hanging = asyncio.Event()

    def disarm(self) -> None:
        self.fault = None

    def time_out_hangs(self) -> None:
        """End every hung call as a backend's own timeout would: with ServiceUnavailable."""
        if self._hang is not None and not self._hang.done():
            self._hang.set_exception(StoreError("ServiceUnavailable", "injected hang timed out"))
            self._hang.exception()  # retrieved here too: no warning when every waiter had been cancelled
        self._hang = None

    @property
    def listing_includes_metadata(self) -> bool:
        return bool(getattr(self.inner, "listing_includes_metadata", False))

    @property
    def min_part_size(self) -> int:
        return self.inner.min_part_size if self._min_part_size is None else self._min_part_size

    # --- injection -----------------------------------------------------------------------------------------

    def _record(self, method: str, args: tuple[Any, ...], streams: bool) -> tuple[Call, Fault | None]:
        """Trace the call; the fault it is to suffer, if any (at the call or, with a byte, in its body)."""
        call = Call(len(self.calls) + 1, method, args, [] if streams else None)
        self.calls.append(call)
        fault = self.fault
        if fault is None or self.fired is not None or (fault.method is not None and fault.method != method):
            return call, None
        self._matching += 1
        if self._matching != fault.call:
            return call, None
        if fault.byte is not None and not streams:
            return call, None  # a byte fault on a call without a body never fires
        return call, fault

    async def _strike(self, fault: Fault) -> None:
        """Fail or hang now (a truncation is handled by the body)."""
        self.fired = fault
        if fault.kind is FaultKind.ERROR:
            raise StoreError(fault.code, f"injected fault {fault.label()}")
        if fault.kind is FaultKind.DISCONNECT:
            raise ConnectionResetError(f"injected fault {fault.label()}")
        if fault.kind is FaultKind.HANG:
            if self._hang is None:
                self._hang = asyncio.get_running_loop().create_future()
            self.hanging.set()
            await asyncio.shield(self._hang)  # shielded: a cancelled waiter leaves the future to the others

    async def _call(self, method: str, args: tuple[Any, ...], run: Callable[[], Awaitable[T]]) -> T:
        _, fault = self._record(method, args, streams=False)
        if fault is not None:
            await self._strike(fault)
        return await run()

    def _body(self, source: AsyncIterable[bytes], call: Call, fault: Fault | None) -> _FaultyBody:
        return _FaultyBody(self, source, call, fault)

    # --- buckets -------------------------------------------------------------------------------------------

    async def list_buckets(self) -> list[BucketInfo]:
        return await self._call("list_buckets", (), self.inner.list_buckets)

    async def create_bucket(self, bucket: str) -> None:
        await self._call("create_bucket", (bucket,), lambda: self.inner.create_bucket(bucket))

    async def delete_bucket(self, bucket: str) -> None:
        await self._call("delete_bucket", (bucket,), lambda: self.inner.delete_bucket(bucket))

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return await self._call("head_bucket", (bucket,), lambda: self.inner.head_bucket(bucket))

    # --- objects -------------------------------------------------------------------------------------------

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        attributes: ObjectAttributes,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        content_etag: bool = True,
    ) -> ObjectInfo:
        call, fault = self._record("put_object", (bucket, key), streams=True)
        if fault is not None and fault.byte is None:
            await self._strike(fault)
            fault = None
        return await self.inner.put_object(
            bucket, key, self._body(body, call, fault), attributes, condition, tags=tags, content_etag=content_etag
        )

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        return await self._call("head_object", (bucket, key), lambda: self.inner.head_object(bucket, key))

    async def get_object(
        self, bucket: str, key: str, byte_range: ByteRange | None = None, *, if_match: str | None = None
    ) -> ObjectStream:
        call, fault = self._record("get_object", (bucket, key, byte_range), streams=True)
        if fault is not None and fault.byte is None:
            await self._strike(fault)
            fault = None
        stream = await self.inner.get_object(bucket, key, byte_range, if_match=if_match)
        return ObjectStream(stream.info, self._body(stream.body, call, fault), stream.range)

    async def delete_object(self, bucket: str, key: str) -> None:
        await self._call("delete_object", (bucket, key), lambda: self.inner.delete_object(bucket, key))

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        attributes: ObjectAttributes | None,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        **source: str | None,
    ) -> ObjectInfo:
        return await self._call(
            "copy_object",
            (src_bucket, src_key, dst_bucket, dst_key),
            lambda: self.inner.copy_object(
                src_bucket, src_key, dst_bucket, dst_key, attributes, condition, tags=tags, **source
            ),
        )

    async def get_object_tagging(self, bucket: str, key: str) -> dict[str, str]:
        return await self._call("get_object_tagging", (bucket, key), lambda: self.inner.get_object_tagging(bucket, key))

    async def put_object_tagging(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        await self._call("put_object_tagging", (bucket, key), lambda: self.inner.put_object_tagging(bucket, key, tags))

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        return await self._call(
            "list_objects",
            (bucket, prefix),
            lambda: self.inner.list_objects(bucket, prefix, delimiter, start_after, max_keys),
        )

    # --- multipart -----------------------------------------------------------------------------------------

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        return await self._call(
            "create_multipart_upload",
            (bucket, key),
            lambda: self.inner.create_multipart_upload(bucket, key, attributes, tags=tags, checksum=checksum),
        )

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: AsyncIterable[bytes]
    ) -> PartInfo:
        call, fault = self._record("upload_part", (bucket, key, upload_id, part_number), streams=True)
        if fault is not None and fault.byte is None:
            await self._strike(fault)
            fault = None
        return await self.inner.upload_part(bucket, key, upload_id, part_number, self._body(body, call, fault))

    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        byte_range: ByteRange | None = None,
        **options: Any,
    ) -> PartInfo:
        return await self._call(
            "upload_part_copy",
            (bucket, key, upload_id, part_number, src_bucket, src_key),
            lambda: self.inner.upload_part_copy(
                bucket, key, upload_id, part_number, src_bucket, src_key, byte_range, **options
            ),
        )

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        *,
        checksums: CompletionChecksums | None = None,
    ) -> ObjectInfo:
        return await self._call(
            "complete_multipart_upload",
            (bucket, key, upload_id),
            lambda: self.inner.complete_multipart_upload(bucket, key, upload_id, parts, condition, checksums=checksums),
        )

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._call(
            "abort_multipart_upload",
            (bucket, key, upload_id),
            lambda: self.inner.abort_multipart_upload(bucket, key, upload_id),
        )

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0, max_parts: int = 1000
    ) -> PartsPage:
        return await self._call(
            "list_parts",
            (bucket, key, upload_id),
            lambda: self.inner.list_parts(bucket, key, upload_id, part_number_marker, max_parts),
        )

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        return await self._call(
            "list_multipart_uploads",
            (bucket, prefix),
            lambda: self.inner.list_multipart_uploads(bucket, prefix, key_marker, upload_id_marker, max_uploads),
        )

    # --- bucket documents ----------------------------------------------------------------------------------

    async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
        return await self._call(
            "get_bucket_document", (bucket, name), lambda: self.inner.get_bucket_document(bucket, name)
        )

    async def get_bucket_documents(self, bucket: str, names: Sequence[str]) -> dict[str, bytes | None]:
        return await self._call(
            "get_bucket_documents", (bucket, *names), lambda: self.inner.get_bucket_documents(bucket, names)
        )

    async def put_bucket_document(self, bucket: str, name: str, document: bytes) -> None:
        await self._call(
            "put_bucket_document", (bucket, name), lambda: self.inner.put_bucket_document(bucket, name, document)
        )

    async def delete_bucket_document(self, bucket: str, name: str) -> None:
        await self._call(
            "delete_bucket_document", (bucket, name), lambda: self.inner.delete_bucket_document(bucket, name)
        )

    async def close(self) -> None:
        self.time_out_hangs()
        await self.inner.close()


class _FaultyBody:
    """A streamed body (into a put or out of a get) that counts its bytes and misbehaves at its fault.

    It keeps the ``expected_size`` hint of what it wraps, and closing it closes what it wraps,
    whether or not it was read to the end.
    """

    def __init__(self, store: FaultyStore, source: AsyncIterable[bytes], call: Call, fault: Fault | None) -> None:
        self._store = store
        self._source = source
        self._call = call
        self._fault = fault
        self.expected_size = getattr(source, "expected_size", None)
        self._chunks = self._iterate()

    def __aiter__(self) -> _FaultyBody:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        await self._chunks.aclose()
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()

    async def _iterate(self) -> AsyncIterator[bytes]:
        fault, passed = self._fault, 0
        assert self._call.chunks is not None
        async for chunk in self._source:
            if fault is not None and passed + len(chunk) >= fault.byte and len(chunk) > 0:
                head = chunk[: fault.byte - passed]
                if head:
                    self._call.chunks.append(len(head))
                    yield head
                await self._misbehave(fault)
                return
            passed += len(chunk)
            self._call.chunks.append(len(chunk))
            yield chunk
        if fault is not None and fault.byte == passed:
            await self._misbehave(fault)  # everything passed: the fault instead of the end
        self._call.ended = True

    async def _misbehave(self, fault: Fault) -> None:
        if fault.kind is FaultKind.TRUNCATE:
            self._store.fired = fault
            return
        await self._store._strike(fault)
