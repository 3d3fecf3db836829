"""The GPU path: a queue that batches frames of concurrent requests, an engine that runs the batches on a
device backend (nvCOMP, DietGPU), a pool with the CPU pool's interface, and promotion of large frames.

Device libraries (CuPy, nvCOMP, torch) are imported only by ``nvcomp`` and ``dietgpu`` when a
GPU is set up, so importing this package costs nothing on a node without one.
"""

from s4.codec.gpu.backend import BackendFactory, DeviceBackend
from s4.codec.gpu.device_codec import DeviceCodec
from s4.codec.gpu.engine import GpuEngine
from s4.codec.gpu.pool import GpuCodecPool
from s4.codec.gpu.promotion import GpuPromotion
from s4.codec.gpu.queue import BatchQueue
from s4.codec.gpu.setup import GpuSettings, GpuSetup, codec_report, setup_gpu

__all__ = [
    "BackendFactory",
    "BatchQueue",
    "DeviceBackend",
    "DeviceCodec",
    "GpuCodecPool",
    "GpuEngine",
    "GpuPromotion",
    "GpuSettings",
    "GpuSetup",
    "codec_report",
    "setup_gpu",
]
