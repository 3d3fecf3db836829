"""The real aws-cli against a real ``s4 serve``, over HTTP and HTTPS."""

import hashlib
import json
import os
import urllib.request

import pytest

MiB = 1024 * 1024


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def pseudo_random(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes without holding a PRNG loop in Python."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:size])


def test_bucket_lifecycle_mb_ls_rb(gateway):
    gateway.aws("s3", "mb", "s3://cli-life")
    assert "cli-life" in gateway.aws("s3", "ls").stdout.decode()
    gateway.aws("s3", "rb", "s3://cli-life")
    assert "cli-life" not in gateway.aws("s3", "ls").stdout.decode()


@pytest.mark.parametrize("size", [0, 1, 20 * MiB, 100 * MiB], ids=["0B", "1B", "20MiB", "100MiB"])
def test_cp_round_trip(gateway, bucket, tmp_path, size):
    data = pseudo_random(size, size)
    src = write(tmp_path / "src.bin", data)
    gateway.aws("s3", "cp", src, f"s3://{bucket}/dir/file.bin")
    dst = tmp_path / "dst.bin"
    gateway.aws("s3", "cp", f"s3://{bucket}/dir/file.bin", dst)
    assert dst.read_bytes() == data
    listing = gateway.aws("s3", "ls", f"s3://{bucket}/dir/").stdout.decode()
    assert f" {size} file.bin" in listing
    head = json.loads(gateway.aws("s3api", "head-object", "--bucket", bucket, "--key", "dir/file.bin").stdout)
    assert head["ContentLength"] == size
    if size >= 20 * MiB:  # aws-cli switched to multipart: the ETag says how many parts
        assert head["ETag"].strip('"').endswith(f"-{-(-size // (8 * MiB))}")
    else:
        assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_get_object_range(gateway, bucket, tmp_path):
    data = pseudo_random(100_000, 7)
    gateway.aws("s3", "cp", write(tmp_path / "f", data), f"s3://{bucket}/r")
    out = tmp_path / "part"
    result = gateway.aws("s3api", "get-object", "--bucket", bucket, "--key", "r", "--range", "bytes=1000-1999", out)
    assert out.read_bytes() == data[1000:2000]
    assert json.loads(result.stdout)["ContentRange"] == "bytes 1000-1999/100000"
    gateway.aws("s3api", "get-object", "--bucket", bucket, "--key", "r", "--range", "bytes=-10", out)
    assert out.read_bytes() == data[-10:]


def test_sync_then_second_sync_uploads_nothing_then_rm(gateway, bucket, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha\n" * 100, "sub/b.txt": b"beta\n", "sub/c.bin": pseudo_random(300_000, 3)}
    for name, data in files.items():
        (src / name).write_bytes(data)
        # S3 reports Last-Modified to the second: files older than the upload keep sync's comparison honest.
        os.utime(src / name, (1_700_000_000, 1_700_000_000))
    first = gateway.aws("s3", "sync", src, f"s3://{bucket}/tree").stdout.decode()
    assert first.count("upload:") == 3
    second = gateway.aws("s3", "sync", src, f"s3://{bucket}/tree").stdout.decode()
    assert "upload:" not in second
    back = tmp_path / "back"
    gateway.aws("s3", "sync", f"s3://{bucket}/tree", back)
    for name, data in files.items():
        assert (back / name).read_bytes() == data
    gateway.aws("s3", "rm", f"s3://{bucket}/tree", "--recursive")
    assert gateway.aws("s3", "ls", f"s3://{bucket}/", check=False).stdout.decode().strip() == ""


def test_presigned_url_with_plain_http_get(gateway, bucket, tmp_path):
    gateway.aws("s3", "cp", write(tmp_path / "p", b"presigned body"), f"s3://{bucket}/p.txt")
    url = gateway.aws("s3", "presign", f"s3://{bucket}/p.txt", "--expires-in", "60").stdout.decode().strip()
    context = None
    if gateway.ca_bundle is not None:
        import ssl

        context = ssl.create_default_context(cafile=str(gateway.ca_bundle))
    with urllib.request.urlopen(url, context=context) as response:
        assert response.read() == b"presigned body"
    tampered = url.replace("p.txt", "q.txt")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered, context=context)
    assert info.value.code == 403


def test_wrong_secret_is_refused(gateway, bucket, tmp_path):
    result = gateway.aws("s3", "ls", f"s3://{bucket}/", secret="not-the-secret", check=False)
    assert result.returncode != 0
    assert b"SignatureDoesNotMatch" in result.stderr
    put = gateway.aws("s3", "cp", write(tmp_path / "x", b"x"), f"s3://{bucket}/x", secret="nope", check=False)
    assert put.returncode != 0
    assert gateway.aws("s3", "ls", f"s3://{bucket}/", check=False).stdout.decode().strip() == ""
