"""ListObjectVersions answers read back in S3's order (s4/store/s3/versions.py), without an upstream:
botocore splits versions and delete markers into two lists, the XML says how they interleave."""

from __future__ import annotations

import datetime as dt

from s4.store.s3.versions import ORDER_FIELD, entries, record_order

XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>false</IsTruncated>
<DeleteMarker><Key>a</Key><VersionId>m2</VersionId><IsLatest>true</IsLatest></DeleteMarker>
<Version><Key>a</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest></Version>
<DeleteMarker><Key>a</Key><VersionId>m1</VersionId><IsLatest>false</IsLatest></DeleteMarker>
<Version><Key>a</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest></Version>
<Version><Key>b</Key><VersionId>null</VersionId><IsLatest>true</IsLatest></Version>
</ListVersionsResult>"""
T = dt.datetime(2026, 12, 2, 7, 0, 0, tzinfo=dt.UTC)


def parsed(server: str, times: dict[str, int]) -> dict:
    """The answer as botocore gives it: versions, then delete markers, each list in document order."""

    def entry(key: str, vid: str, latest: bool) -> dict:
        return {"Key": key, "VersionId": vid, "IsLatest": latest, "LastModified": T + dt.timedelta(seconds=times[vid])}

    custom: dict = {}
    record_order({"status_code": 200, "body": XML, "headers": {}}, custom)
    return {
        "Versions": [entry("a", "v2", False), entry("a", "v1", False), entry("b", "null", True)],
        "DeleteMarkers": [entry("a", "m2", True), entry("a", "m1", False)],
        "ResponseMetadata": {"HTTPHeaders": {"server": server}},
        **custom,
    }


def test_the_xml_order_interleaves_versions_and_delete_markers():
    answer = parsed("AmazonS3", {"m2": 0, "v2": 0, "m1": 0, "v1": 0, "null": 0})
    assert answer[ORDER_FIELD] == [True, False, True, False, False]
    assert [(e["VersionId"], marker) for e, marker in entries(answer)] == [
        ("m2", True),
        ("v2", False),
        ("m1", True),
        ("v1", False),
        ("null", False),
    ]


def test_only_seaweedfs_answers_are_reordered_by_time():
    # Times that disagree with the document order: S3's order stands, SeaweedFS's is mended by time.
    times = {"m2": 9, "v2": 1, "m1": 5, "v1": 3, "null": 0}
    assert [e["VersionId"] for e, _ in entries(parsed("AmazonS3", times))] == ["m2", "v2", "m1", "v1", "null"]
    assert [e["VersionId"] for e, _ in entries(parsed("SeaweedFS 4.48", times))] == ["m2", "m1", "v1", "v2", "null"]


def test_without_the_xml_order_the_lists_are_merged_by_time():
    answer = parsed("AmazonS3", {"m2": 9, "v2": 7, "m1": 5, "v1": 3, "null": 0})
    del answer[ORDER_FIELD]
    assert [e["VersionId"] for e, _ in entries(answer)] == ["m2", "v2", "m1", "v1", "null"]


def test_seaweedfs_ids_of_both_formats_order_by_the_time_in_them():
    """SeaweedFS ids start with the write time in nanoseconds, plain (older ids) or subtracted from 2**63 - 1."""
    ns = 1_796_000_000_000_000_000

    def plain(offset: int) -> str:
        return f"{ns + offset:016x}" + "ab" * 8

    def inverted(offset: int) -> str:
        return f"{(1 << 63) - 1 - ns - offset:016x}" + "cd" * 8

    ids = [plain(1), inverted(2), plain(3), inverted(4)]  # oldest first, all within one second
    answer = {
        "Versions": [
            {"Key": "k", "VersionId": vid, "IsLatest": vid == ids[-1], "LastModified": T} for vid in sorted(ids)
        ],
        "ResponseMetadata": {"HTTPHeaders": {"server": "SeaweedFS 4.48"}},
    }
    assert [e["VersionId"] for e, _ in entries(answer)] == ids[::-1]
