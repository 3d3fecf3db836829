"""Turning a client's body into what is stored: the codec chosen from the first bytes, frames or raw bytes.

Both a PUT and a staged multipart part are encoded here; what the encoding produced
(sizes, CRC32C, MD5, frame positions) is known only once the inner store has read the
stored stream to its end, and ``confirm_stored`` then refuses a write the inner store
kept short.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, AsyncIterator

from s4.codec import ChunkManifest, CodecDispatcher, CodecKind, CpuCodecPool, FramedBodyWriter, crc32c
from s4.codec.dispatcher import SAMPLE_SIZE
from s4.codec.policy import FramePolicy
from s4.codec.stream import OriginalDigest, encode_frames, rechunk
from s4.store.base import ObjectInfo, ObjectStore, StoreError
from s4.store.stats import StoreStats

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class EncodedUpload:
    """What encoding a body produced, known once the stored stream has been consumed."""

    writer: FramedBodyWriter
    digest: OriginalDigest
    framed: bool = True
    raw_size: int = 0
    raw_crc: int = 0
    codec: CodecKind = CodecKind.PASSTHROUGH
    ended: bool = False
    """Set by the writer once the inner store has read the stored stream to its end."""

    @property
    def original_size(self) -> int:
        return self.writer.original_size if self.framed else self.raw_size

    @property
    def crc32c(self) -> int:
        return self.writer.crc32c if self.framed else self.raw_crc

    @property
    def stored_size(self) -> int:
        return self.writer.stored_size if self.framed else self.raw_size

    def manifest(self, logical_etag: str, multipart: bool = False) -> ChunkManifest:
        return ChunkManifest(
            codec=self.codec if self.framed else CodecKind.PASSTHROUGH,
            original_size=self.original_size,
            compressed_size=self.stored_size,
            crc32c=self.crc32c,
            framed=self.framed,
            multipart=multipart,
            logical_etag=logical_etag,
        )


class BodyEncoder:
    """The codec pool, dispatcher and frame policy, applied to one body at a time."""

    def __init__(self, pool: CpuCodecPool, dispatcher: CodecDispatcher, policy: FramePolicy, stats: StoreStats):
        self.pool = pool
        self.dispatcher = dispatcher
        self.policy = policy
        self.stats = stats

    async def encode(
        self,
        body: AsyncIterable[bytes],
        content_type: str | None,
        expected_size: int | None,
        allow_raw: bool = True,
    ) -> tuple[EncodedUpload, AsyncIterator[bytes]]:
        """Choose the codec from the first bytes, then the stored stream and its bookkeeping.

        The first frame is compressed before anything is stored: if it does not shrink
        although the sample looked compressible, the object is stored raw after all,
        so incompressible objects stay byte-identical in the bucket. Multipart parts
        (``allow_raw`` False) are always framed, because they are concatenated later.
        """
        source = aiter(body)
        sample = bytearray()
        async for chunk in source:
            sample += chunk
            if len(sample) >= SAMPLE_SIZE:
                break
        dispatch = self.dispatcher.choose(bytes(sample[:SAMPLE_SIZE]), content_type)
        upload = EncodedUpload(FramedBodyWriter(), OriginalDigest(), codec=dispatch.kind)
        frames = rechunk(_prepend(bytes(sample), source), self.policy.frame_size(expected_size))
        first = await anext(frames, None)
        if first is None:
            upload.framed = not allow_raw
            return upload, _empty()
        await upload.digest.update(first)
        if dispatch.kind is not CodecKind.PASSTHROUGH or not allow_raw:
            encoded = await self.pool.encode_frame(self.dispatcher.frame_codec(dispatch.kind, first), first)
            if encoded.header.codec is not CodecKind.PASSTHROUGH or not allow_raw:
                return upload, self._framed(upload, encoded, frames, dispatch.kind)
        upload.framed = False
        upload.codec = CodecKind.PASSTHROUGH
        self.stats.objects_stored_uncompressed[dispatch.reason] += 1
        return upload, self._raw(upload, first, frames)

    async def _framed(self, upload: EncodedUpload, first, frames: AsyncIterator[bytes], kind: CodecKind):
        header, payload = upload.writer.append(first)
        yield header
        yield payload

        def pick(frame: bytes) -> CodecKind:
            return self.dispatcher.frame_codec(kind, frame)

        async for piece in encode_frames(frames, pick, self.pool, upload.writer, upload.digest):
            yield piece

    async def _raw(self, upload: EncodedUpload, first: bytes, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        upload.raw_size, upload.raw_crc = len(first), crc32c(first)
        yield first
        async for frame in frames:
            await upload.digest.update(frame)
            upload.raw_size += len(frame)
            upload.raw_crc = crc32c(frame, upload.raw_crc)
            yield frame


async def confirm_stored(inner: ObjectStore, bucket: str, key: str, info: ObjectInfo, upload: EncodedUpload) -> None:
    """Fail a write the inner store took short, removing what it stored.

    A store that returns before reading the whole stream, or stores another number of
    bytes than it was sent, has committed a partial object, which (its manifest comes
    last) would even be served as an unmanaged one. No object is better than that.
    """
    if upload.ended and info.size == upload.stored_size:
        return
    _log.error(
        "the inner store kept %d of %d bytes of %s/%s (body read to its end: %s); removing it",
        info.size,
        upload.stored_size,
        bucket,
        key,
        upload.ended,
    )
    try:
        await inner.delete_object(bucket, key)
    except Exception as exc:
        _log.error("could not remove the incomplete %s/%s: %r", bucket, key, exc)
    raise StoreError("InternalError", "The storage backend kept an incomplete object; please retry")


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""
