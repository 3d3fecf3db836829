"""A dictionary bound to a prefix (the gateway's ``dictionaries`` setting): new small PUTs there are stored as
cpu-zstd-dict through the normal PUT path, over a real SeaweedFS, and read back by a gateway that must fetch
the dictionary from ``.s4dict/<id>``."""

from __future__ import annotations

import json

import pytest

from tests.e2e.gateway import start_gateway
from tests.e2e.test_operator_tools import s4, small_events


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from tests.seaweed import SeaweedUnavailable, start_seaweed

    try:
        seaweed = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield seaweed
    seaweed.stop()


def test_new_puts_under_a_bound_prefix_are_stored_with_the_dictionary(upstream, tmp_path):
    objects = list(small_events(400).items())  # odd: events/*.json, even: logs/*.log, 2-16 KiB
    old, new = objects[:300], objects[300:]
    plain = start_gateway(tmp_path / "plain", extra_env=upstream.env())
    try:
        client = plain.client()
        client.create_bucket(Bucket="bound")
        for key, body in old:
            client.put_object(Bucket="bound", Key=key, Body=body)
        trained = s4(upstream, "train-dict", "s3://bound/events/", "--endpoint-url", upstream.endpoint, "--json")
        assert trained.returncode == 0, trained.stderr.decode()
        report = json.loads(trained.stdout)["train"]
        assert report["binding"] == {"bucket": "bound", "prefix": "events/", "id": report["dict_id"]}

        config = tmp_path / "s4.yaml"
        config.write_text(f"dictionaries:\n  - {{bucket: bound, prefix: 'events/', id: '{report['dict_id']}'}}\n")
        bound = start_gateway(tmp_path / "bound", extra_env=upstream.env(), extra_args=("--config", str(config)))
        try:
            writer = bound.client()
            for key, body in new:
                writer.put_object(Bucket="bound", Key=key, Body=body)
                writer.put_object(Bucket="bound", Key="unbound/" + key, Body=body)  # the same bytes, no dictionary
            raw = upstream.client()
            with_dict = without = 0
            for key, body in new:
                meta = raw.head_object(Bucket="bound", Key=key)
                other = raw.head_object(Bucket="bound", Key="unbound/" + key)
                assert other["Metadata"]["s4-codec"] == "cpu-zstd" and "s4-dict-id" not in other["Metadata"]
                if key.startswith("events/"):
                    assert meta["Metadata"]["s4-codec"] == "cpu-zstd-dict", key
                    assert meta["Metadata"]["s4-dict-id"] == report["dict_id"], key
                    with_dict += meta["ContentLength"]
                    without += other["ContentLength"]
                else:
                    assert meta["Metadata"]["s4-codec"] == "cpu-zstd", key  # logs/ is not bound
                assert writer.get_object(Bucket="bound", Key=key)["Body"].read() == body, key
            print(
                f"bound prefix: {len(new) // 2} new event objects stored in {with_dict} bytes with the dictionary,"
                f" {without} without ({1 - with_dict / without:.1%} smaller)"
            )
            assert with_dict < 0.9 * without
        finally:
            bound.stop()
        # The plain gateway has never read the dictionary: it fetches .s4dict/<id> to serve them.
        for key, body in new:
            answer = client.get_object(Bucket="bound", Key=key)
            assert answer["Body"].read() == body, key
            ranged = client.get_object(Bucket="bound", Key=key, Range="bytes=100-199")["Body"].read()
            assert ranged == body[100:200], key
    finally:
        plain.stop()
