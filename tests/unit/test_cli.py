"""The offline tools as users run them: subprocesses on the gateway fixtures."""

import json
import subprocess
import sys

import pytest

from tests.conftest import GATEWAY_OBJECTS


def s4(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "s4", *map(str, args)], capture_output=True, input=stdin, timeout=60)


def meta_args(fixtures, name):
    return ["--meta", fixtures / f"{name}.meta.json", "--dict", fixtures / "zstd_dict.bin"]


@pytest.mark.parametrize("name", GATEWAY_OBJECTS)
def test_decode_reproduces_every_gateway_object(fixtures_dir, name, tmp_path):
    out = tmp_path / "out"
    r = s4("decode", fixtures_dir / f"{name}.body", *meta_args(fixtures_dir, name), "-o", out)
    assert r.returncode == 0, r.stderr
    original = fixtures_dir / f"{name}.orig"
    if original.exists():
        assert out.read_bytes() == original.read_bytes()
    else:
        meta = json.loads((fixtures_dir / f"{name}.meta.json").read_text())
        from s4.codec import crc32c

        data = out.read_bytes()
        assert (len(data), crc32c(data)) == (int(meta["s4-original-size"]), int(meta["s4-crc32c"]))


def test_decode_to_stdout(fixtures_dir):
    r = s4("decode", fixtures_dir / "text_gzip.body", "--meta", fixtures_dir / "text_gzip.meta.json")
    assert r.returncode == 0 and r.stdout == (fixtures_dir / "text_gzip.orig").read_bytes()


def test_decode_accepts_prefixed_metadata_keys(fixtures_dir, tmp_path):
    meta = json.loads((fixtures_dir / "text_zstd.meta.json").read_text())
    prefixed = tmp_path / "meta.json"
    prefixed.write_text(json.dumps({f"x-amz-meta-{k}": v for k, v in meta.items()}))
    r = s4("decode", fixtures_dir / "text_zstd.body", "--meta", prefixed)
    assert r.returncode == 0 and r.stdout == (fixtures_dir / "text_zstd.orig").read_bytes()


def test_decode_refuses_corruption_and_writes_nothing(fixtures_dir, tmp_path):
    body = bytearray((fixtures_dir / "text_zstd.body").read_bytes())
    body[100] ^= 0x55
    bad = tmp_path / "bad.body"
    bad.write_bytes(bytes(body))
    out = tmp_path / "out"
    r = s4("decode", bad, "--meta", fixtures_dir / "text_zstd.meta.json", "-o", out)
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s4 decode:")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temp file left behind


def test_decode_of_a_truncated_body_fails(fixtures_dir, tmp_path):
    bad = tmp_path / "cut.body"
    bad.write_bytes((fixtures_dir / "multi_zstd.body").read_bytes()[:40_000])
    r = s4("decode", bad, "--meta", fixtures_dir / "multi_zstd.meta.json", "-o", tmp_path / "o")
    assert r.returncode == 1 and b"truncated" in r.stderr
    assert not (tmp_path / "o").exists()


def test_decode_without_the_dictionary_says_what_is_missing(fixtures_dir):
    r = s4("decode", fixtures_dir / "dict_event.body", "--meta", fixtures_dir / "dict_event.meta.json")
    assert r.returncode == 3 and b"9867d0e5cf974014" in r.stderr and b"--dict" in r.stderr
    assert r.stdout == b""


def test_decode_with_the_wrong_dictionary_is_refused(fixtures_dir, tmp_path):
    other = tmp_path / "other.dict"
    other.write_bytes(b"not the dictionary")
    r = s4("decode", fixtures_dir / "dict_event.body", "--meta", fixtures_dir / "dict_event.meta.json", "--dict", other)
    assert r.returncode == 1 and b"9867d0e5cf974014" in r.stderr


@pytest.mark.parametrize("name", GATEWAY_OBJECTS)
def test_inspect_reports_frames_and_checks(fixtures_dir, name):
    r = s4("inspect", fixtures_dir / f"{name}.body", *meta_args(fixtures_dir, name))
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout.decode()
    assert text.rstrip().splitlines()[-1].endswith(", ok")
    if name == "multi_zstd":
        assert "2 frame(s), 5040000 -> 43597 bytes" in text and text.count(" cpu-zstd ") == 2


def test_inspect_flags_a_bad_crc(fixtures_dir, tmp_path):
    body = bytearray((fixtures_dir / "multi_zstd.body").read_bytes())
    body[24] ^= 1  # first frame's CRC field
    bad = tmp_path / "bad.body"
    bad.write_bytes(bytes(body))
    r = s4("inspect", bad, "--meta", fixtures_dir / "multi_zstd.meta.json")
    assert r.returncode == 1
    assert b"BAD: cpu-zstd frame CRC32C mismatch" in r.stdout


def test_inspect_without_metadata_detects_frames(fixtures_dir):
    r = s4("inspect", fixtures_dir / "multi_zstd.body")
    assert r.returncode == 0 and b"2 frame(s)" in r.stdout


def test_index_dumps_the_sidecar(fixtures_dir):
    r = s4("index", fixtures_dir / "multi_zstd.s4index")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "version: 2" in text and "etag: 2a13d8a717ef421c5210eb6f0fb6b088" in text
    assert "4194304" in text and "845696" in text


def test_index_rejects_garbage(tmp_path):
    bad = tmp_path / "x.s4index"
    bad.write_bytes(b"S4IX" + bytes(10))
    r = s4("index", bad)
    assert r.returncode == 1 and b"truncated" in r.stderr


def test_codecs_lists_every_codec_with_reasons():
    r = s4("codecs")
    assert r.returncode == 0
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 9
    assert any("nvcomp-bitcomp" in line and "unavailable" in line and "GPU" in line for line in lines)
    assert any("cpu-zstd " in line and "available (cpu)" in line for line in lines)
