"""dietgpu-ans: DietGPU's byte-wise ANS on a GPU, through its PyTorch operators (``torch.ops.dietgpu``).

DietGPU ships as a shared library that registers PyTorch operators; there is no
package to depend on. It runs only when ``gpu.dietgpu_library`` names that library
and PyTorch with CUDA loads it; otherwise the codec is registered as unavailable with
the reason, and the gateway starts as usual. A frame's payload is one DietGPU
compressed buffer (FORMAT.md section 2, id 5), with DietGPU's checksum on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from s4.codec.base import Codec, check_decoded_size
from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError, looks_like_oom
from s4.codec.format.kinds import CodecKind

NO_LIBRARY_REASON = "needs the DietGPU library (torch.ops.dietgpu): set gpu.dietgpu_library to its .so"


def load_dietgpu(library: str | Path | None, device: int = 0) -> DietGpuCodec:
    """The codec, or CodecError(unavailable) saying why not: no path, no PyTorch, no CUDA, a bad library."""
    if not library:
        raise CodecError.unavailable(NO_LIBRARY_REASON)
    path = Path(library)
    if not path.is_file():
        raise CodecError.unavailable(f"DietGPU library {path} does not exist")
    try:
        import torch
    except Exception as exc:
        raise CodecError.unavailable(f"DietGPU needs PyTorch, which is not importable: {exc}") from None
    try:
        if not torch.cuda.is_available():
            raise CodecError.unavailable("DietGPU needs a CUDA device; PyTorch sees none")
        torch.ops.load_library(str(path))
        ops = torch.ops.dietgpu
        ops.compress_data_simple  # noqa: B018 - fails here, not on the first frame, if the library lacks it
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError.unavailable(f"cannot load DietGPU from {path}: {type(exc).__name__}: {exc}") from None
    return DietGpuCodec(torch, ops, device)


class DietGpuCodec(Codec):
    kind = CodecKind.DIETGPU_ANS

    def __init__(self, torch: Any, ops: Any, device: int = 0) -> None:
        self._torch = torch
        self._ops = ops
        self._device = torch.device(f"cuda:{device}")
        self.device = f"cuda:{device}"
        self._lock = threading.Lock()  # one batch at a time on the device: DietGPU calls are not re-entrant

    def compress(self, data: Buffer) -> bytes:
        return self.compress_batch([data])[0]

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        return self.decompress_batch([payload], [original_size])[0]

    def compress_batch(self, frames: Sequence[Buffer]) -> list[bytes]:
        inputs = [self._to_device(f) for f in frames]
        with self._lock:
            outputs = self._ops.compress_data_simple(False, inputs, True)
        return [self._to_bytes(t) for t in outputs]

    def decompress_batch(self, payloads: Sequence[Buffer], original_sizes: Sequence[int]) -> list[bytes]:
        if len(payloads) != len(original_sizes):
            raise ValueError("payloads and original_sizes differ in length")
        inputs = [self._to_device(p) for p in payloads]
        try:
            with self._lock:
                outputs = self._ops.decompress_data_simple(False, inputs, True)
        except RuntimeError as exc:
            if looks_like_oom(exc):
                raise CodecError.out_of_memory(f"dietgpu-ans ran out of device memory: {exc}") from exc
            # DietGPU checks its own checksum and headers and raises on any mismatch.
            raise CodecError.corrupt(f"dietgpu-ans payload does not decode: {exc}") from None
        decoded = [self._to_bytes(t) for t in outputs]
        for out, size in zip(decoded, original_sizes, strict=True):
            check_decoded_size(self.kind, out, size)
        return decoded

    def _to_device(self, data: Buffer) -> Any:
        torch = self._torch
        view = memoryview(data).cast("B")
        if not len(view):
            return torch.empty(0, dtype=torch.uint8, device=self._device)
        return torch.frombuffer(bytearray(view), dtype=torch.uint8).to(self._device)

    def _to_bytes(self, tensor: Any) -> bytes:
        return tensor.cpu().numpy().tobytes()
