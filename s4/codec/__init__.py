"""The S4 codec layer: stored format, codecs, registry, dispatcher, the CPU pool and the GPU pool.

Nothing here knows HTTP, stores or metrics: the compressing store reports CodecError kinds as StoreErrors,
and metrics arrive through the registry's telemetry callback.
"""

from s4.codec.base import Codec
from s4.codec.body import (
    DEFAULT_FRAME_SIZE,
    BodyDecoder,
    EncodedBody,
    FramedBodyWriter,
    decode_body,
    encode_body,
    iter_decoded,
)
from s4.codec.cpu.zstd_dict import ZstdDictionary
from s4.codec.dispatcher import CodecDispatcher, Dispatch, DispatchMode
from s4.codec.errors import CodecError, CodecErrorKind, looks_like_oom
from s4.codec.format.crc import crc32c, crc32c_combine
from s4.codec.format.fcg1 import Fcg1Algo, Fcg1Container, decode_fcg1, encode_fcg1
from s4.codec.format.frame import (
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    Frame,
    FrameHeader,
    FrameStreamReader,
    PaddingHeader,
    iter_frames,
    parse_record_header,
)
from s4.codec.format.index import FrameIndex, IndexEntry, sidecar_key
from s4.codec.format.kinds import CodecKind
from s4.codec.format.manifest import ChunkManifest
from s4.codec.frame_codec import EncodedFrame, decode_frame, encode_frame
from s4.codec.gpu.engine import GpuEngine
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.setup import GpuSettings, GpuSetup, codec_report, setup_gpu
from s4.codec.pool import CpuCodecPool
from s4.codec.registry import CodecRegistry, CodecStatus
from s4.codec.telemetry import CodecOp, CompressTelemetry, TelemetryCallback

__all__ = [
    "DEFAULT_FRAME_SIZE",
    "MAX_FRAMES",
    "MAX_FRAME_BYTES",
    "BodyDecoder",
    "ChunkManifest",
    "Codec",
    "CodecDispatcher",
    "CodecError",
    "CodecErrorKind",
    "CodecKind",
    "CodecOp",
    "CodecRegistry",
    "CodecStatus",
    "CompressTelemetry",
    "CpuCodecPool",
    "Dispatch",
    "DispatchMode",
    "EncodedBody",
    "EncodedFrame",
    "Fcg1Algo",
    "Fcg1Container",
    "Frame",
    "FrameHeader",
    "FrameIndex",
    "FrameStreamReader",
    "FramedBodyWriter",
    "GpuCodecPool",
    "GpuEngine",
    "GpuSettings",
    "GpuSetup",
    "IndexEntry",
    "PaddingHeader",
    "TelemetryCallback",
    "ZstdDictionary",
    "codec_report",
    "crc32c",
    "crc32c_combine",
    "decode_body",
    "decode_fcg1",
    "decode_frame",
    "encode_body",
    "encode_fcg1",
    "encode_frame",
    "iter_decoded",
    "iter_frames",
    "looks_like_oom",
    "parse_record_header",
    "setup_gpu",
    "sidecar_key",
]
