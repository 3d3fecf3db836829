"""The stored format (FORMAT.md): codec ids, the chunk manifest, S4F2 frames, FCG1 containers, S4IX indexes, CRC32C.

What another implementation must match byte for byte lives here and nowhere else;
payloads are opaque bytes to these modules, which know no codec beyond its id.
"""

from s4.codec.format.crc import crc32c, crc32c_combine
from s4.codec.format.fcg1 import BitcompDataType, Fcg1Algo, Fcg1Container, decode_fcg1, encode_fcg1
from s4.codec.format.frame import (
    FRAME_HEADER_SIZE,
    FRAME_MAGIC,
    MAX_FRAME_BYTES,
    MAX_FRAMES,
    PADDING_MAGIC,
    Frame,
    FrameHeader,
    FrameStreamReader,
    PaddingHeader,
    iter_frames,
    parse_record_header,
)
from s4.codec.format.index import FrameIndex, IndexEntry, sidecar_key
from s4.codec.format.kinds import CodecKind
from s4.codec.format.manifest import ChunkManifest, normalize_metadata

__all__ = [
    "FRAME_HEADER_SIZE",
    "FRAME_MAGIC",
    "MAX_FRAMES",
    "MAX_FRAME_BYTES",
    "PADDING_MAGIC",
    "BitcompDataType",
    "ChunkManifest",
    "CodecKind",
    "Fcg1Algo",
    "Fcg1Container",
    "Frame",
    "FrameHeader",
    "FrameIndex",
    "FrameStreamReader",
    "IndexEntry",
    "PaddingHeader",
    "crc32c",
    "crc32c_combine",
    "decode_fcg1",
    "encode_fcg1",
    "iter_frames",
    "normalize_metadata",
    "parse_record_header",
    "sidecar_key",
]
