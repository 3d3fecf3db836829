"""Turning a client's body into what is stored: the codec chosen from the first bytes, always S4F2 frames.

Both a PUT and a staged multipart part are encoded here; what the encoding produced
(sizes, CRC32C, MD5, frame positions) is known only once the inner store has read the
stored stream to its end, and ``confirm_stored`` then refuses a write the inner store
kept short.

Every body is framed, incompressible ones too (as passthrough frames): each frame carries
the CRC32C of its bytes, so a read checks every byte before it is sent, full or ranged,
and a byte flipped at rest is an error, never a wrong answer. The price is 28 bytes per
frame (4 MiB or more of original bytes past 1 MiB): under 0.001%.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from s4.codec import ChunkManifest, CodecDispatcher, CodecKind, CpuCodecPool, FramedBodyWriter, ZstdDictionary
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
    codec: CodecKind = CodecKind.PASSTHROUGH
    """The object's codec: the dispatcher's choice, or passthrough once the body proved incompressible."""
    ended: bool = False
    """Set by the writer once the inner store has read the stored stream to its end."""
    dict_id: str | None = None
    """The zstd dictionary a cpu-zstd-dict object is encoded with (its manifest names it)."""

    @property
    def original_size(self) -> int:
        return self.writer.original_size

    @property
    def crc32c(self) -> int:
        return self.writer.crc32c

    @property
    def stored_size(self) -> int:
        return self.writer.stored_size

    def manifest(self, logical_etag: str, multipart: bool = False) -> ChunkManifest:
        return ChunkManifest(
            codec=self.codec,
            original_size=self.original_size,
            compressed_size=self.stored_size,
            crc32c=self.crc32c,
            framed=True,
            multipart=multipart,
            logical_etag=logical_etag,
            dict_id=self.dict_id if self.codec is CodecKind.CPU_ZSTD_DICT else None,
        )


@dataclasses.dataclass(frozen=True)
class DictionaryBinding:
    """Small objects PUT under ``prefix`` of ``bucket`` are encoded with the dictionary ``.s4dict/<dict_id>``
    (the gateway's ``dictionaries`` setting; ``s4 train-dict`` makes the dictionary)."""

    bucket: str
    prefix: str
    dict_id: str
    max_size: int


def binding_for(
    bindings: Sequence[DictionaryBinding], bucket: str, key: str, size: int | None
) -> DictionaryBinding | None:
    """The binding of the longest prefix that holds ``key``, for a body of known ``size`` up to its limit.

    A body of unknown length (chunked) is not bound: a dictionary helps small objects only, and a
    large one would be encoded frame by frame against a dictionary made for small ones.
    """
    if size is None:
        return None
    found = [b for b in bindings if b.bucket == bucket and key.startswith(b.prefix) and size <= b.max_size]
    return max(found, key=lambda b: len(b.prefix), default=None)


class BodyEncoder:
    """The codec pool, dispatcher and frame policy, applied to one body at a time."""

    def __init__(self, pool: CpuCodecPool, dispatcher: CodecDispatcher, policy: FramePolicy, stats: StoreStats):
        self.pool = pool
        self.dispatcher = dispatcher
        self.policy = policy
        self.stats = stats
        self.dict_id: str | None = None

    def with_dictionary(self, dictionary: ZstdDictionary) -> BodyEncoder:
        """This encoder, encoding as cpu-zstd-dict with ``dictionary`` (what is incompressible stays raw)."""
        d = self.dispatcher
        encoder = BodyEncoder(
            self.pool.with_registry(self.pool.registry.with_dictionary(dictionary)),
            CodecDispatcher(CodecKind.CPU_ZSTD_DICT, d.mode, d.entropy_threshold),
            self.policy,
            self.stats,
        )
        encoder.dict_id = dictionary.dict_id
        return encoder

    async def encode(
        self,
        body: AsyncIterable[bytes],
        content_type: str | None,
        expected_size: int | None,
        allow_raw: bool = True,
    ) -> tuple[EncodedUpload, AsyncIterator[bytes]]:
        """Choose the codec from the first bytes, then the stored stream and its bookkeeping.

        The first frame is compressed before anything is stored: if it does not shrink
        although the sample looked compressible, the whole object is stored as passthrough
        frames, without trying its other frames. Multipart parts (``allow_raw`` False) keep
        trying: one part says little about the next.
        """
        source = aiter(body)
        sample = bytearray()
        async for chunk in source:
            sample += chunk
            if len(sample) >= SAMPLE_SIZE:
                break
        dispatch = self.dispatcher.choose(bytes(sample[:SAMPLE_SIZE]), content_type)
        upload = EncodedUpload(FramedBodyWriter(), OriginalDigest(), codec=dispatch.kind, dict_id=self.dict_id)
        frames = rechunk(_prepend(bytes(sample), source), self.policy.frame_size(expected_size))
        first = await anext(frames, None)
        if first is None:
            return upload, _empty()
        await upload.digest.update(first)
        encoded = await self.pool.encode_frame(self.dispatcher.frame_codec(dispatch.kind, first), first)
        if encoded.header.codec is CodecKind.PASSTHROUGH and allow_raw:
            upload.codec = CodecKind.PASSTHROUGH
            self.stats.objects_stored_uncompressed[dispatch.reason] += 1
        return upload, self._framed(upload, encoded, frames, upload.codec)

    async def _framed(self, upload: EncodedUpload, first, frames: AsyncIterator[bytes], kind: CodecKind):
        header, payload = upload.writer.append(first)
        yield header
        yield payload

        def pick(frame: bytes) -> CodecKind:
            return self.dispatcher.frame_codec(kind, frame)

        async for piece in encode_frames(frames, pick, self.pool, upload.writer, upload.digest):
            yield piece


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
        if info.version_id is None:
            await inner.delete_object(bucket, key)
        else:  # that version, for good: a delete marker would leave it stored
            await inner.delete_object(bucket, key, version_id=info.version_id)
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
