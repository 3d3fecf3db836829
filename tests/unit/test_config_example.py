from pathlib import Path

from s4.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_the_shipped_example_config_loads():
    config = load_config(EXAMPLE, env={})
    assert (config.port, config.codec, config.frames.medium_frame) == (8014, "cpu-zstd", 4 * 1024 * 1024)
    assert config.credentials[0].access_key_id == "S4EXAMPLEKEY0001"
