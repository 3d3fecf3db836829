"""``s4 serve`` says at start what runs on this node and why the rest does not, in ``s4 doctor``'s words."""

from __future__ import annotations

import pytest

from s4.codec import CodecKind
from tests.e2e.gateway import start_gateway


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_logs_one_codec_block_at_start(tmp_path, workers):
    gateway = start_gateway(tmp_path, extra_args=("--workers", str(workers)))
    try:
        client = gateway.client()
        client.create_bucket(Bucket="summary")  # it serves, whatever the GPU
        output = "".join(gateway.output)
    finally:
        gateway.stop()
    assert output.count("codecs on this node (s4 doctor tells more):") == 1, output
    block = output.split("codecs on this node (s4 doctor tells more):\n", 1)[1].splitlines()[: len(CodecKind)]
    assert [int(line.split()[0]) for line in block] == [int(k) for k in CodecKind]
    by_name = {line.split()[1]: line for line in block}
    assert "runs here (cpu)" in by_name["cpu-zstd"]
    gpu_line = by_name["nvcomp-bitcomp"]
    assert "runs here (cuda:" in gpu_line or "does not run here: needs an NVIDIA GPU" in gpu_line
