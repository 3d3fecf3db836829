"""``s4 serve`` as a user first meets it: no configuration at all."""

import re
import stat
import time

import boto3

from tests.e2e.gateway import start_gateway


def banner(gateway) -> str:
    """The start-up banner, once all of it has arrived (stdout lines trail the endpoint line on stderr)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = "".join(gateway.output)
        if "aws --endpoint-url" in text:  # the banner's last line
            return text
        time.sleep(0.1)
    raise AssertionError("s4 serve did not print its banner: " + "".join(gateway.output))


def printed_credentials(gateway) -> tuple[str, str]:
    text = banner(gateway)
    key = re.search(r"access key id:\s+(\S+)", text)
    secret = re.search(r"secret access key:\s+(\S+)", text)
    assert key and secret, text
    return key.group(1), secret.group(1)


def test_first_start_generates_saves_and_prints_credentials(tmp_path):
    gateway = start_gateway(tmp_path, env_credentials=False)
    try:
        key, secret = printed_credentials(gateway)
        assert "aws --endpoint-url" in "".join(gateway.output)
        client = boto3.client(
            "s3",
            endpoint_url=gateway.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="first")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["first"]
        saved = gateway.data_dir / "credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    finally:
        gateway.stop()
    again = start_gateway(tmp_path, env_credentials=False)
    try:
        assert printed_credentials(again) == (key, secret)  # the same pair on every later start
    finally:
        again.stop()


def test_the_shipped_example_config_starts_the_server(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    gateway = start_gateway(tmp_path, env_credentials=False, extra_args=("--config", str(example)))
    try:
        text = banner(gateway)
        assert "S4EXAMPLEKEY0001" in text and "change-me" not in text  # configured secrets are not printed
        client = boto3.client(
            "s3",
            endpoint_url=gateway.endpoint,
            aws_access_key_id="S4EXAMPLEKEY0001",
            aws_secret_access_key="change-me-to-a-long-random-secret",
            region_name="us-east-1",
        )
        assert client.list_buckets()["Buckets"] == []
    finally:
        gateway.stop()
