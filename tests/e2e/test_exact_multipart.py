"""Multipart uploads as S3 answers them, against a real ``s4 serve`` (issue 13, items 6 and 8, ListParts paging).

The leak tests kill the gateway with SIGKILL for real while a Complete or a PUT is under way
in the inner store, start it again on the same store, and look at the store itself (the
embedded store's SQLite index, or SeaweedFS straight through boto3) to see what was left.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

import pytest

MiB = 1024 * 1024
POLL_LIMIT_S = 120.0
"""Generous: the machine may be loaded; polls end as soon as what they wait for is there."""


def error_code(info) -> str:
    return info.value.response["Error"]["Code"]


def poll(what: str, condition: Callable[[], object], limit: float = POLL_LIMIT_S) -> object:
    deadline = time.monotonic() + limit
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# == item 8: the part that finished last wins =============================================================


class InterruptingBody:
    """``size`` bytes of ``char``, seekable; just before the read that reaches the end returns, ``interrupt``
    runs (ceph s3-tests' FakeWriteFile): the request is in flight, its last bytes not sent yet."""

    def __init__(self, size: int, char: bytes, interrupt: Callable[[], None] | None = None) -> None:
        self.size = size
        self.char = char
        self.interrupt = interrupt
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self.size - self.offset
        count = min(size, self.size - self.offset)
        self.offset += count
        if self.interrupt is not None and self.offset == self.size and count > 0:
            self.interrupt()
        return self.char * count

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.offset = {os.SEEK_SET: offset, os.SEEK_CUR: self.offset + offset, os.SEEK_END: self.size + offset}[whence]
        return self.offset

    def tell(self) -> int:
        return self.offset


@pytest.mark.parametrize("size", [8, 9 * MiB])  # one frame; several (a sidecar per part)
def test_resending_a_part_the_send_that_finished_last_wins(gateway, bucket, size):
    """s3-tests ``test_multipart_resend_first_finishes_last``: part 1 is sent as A; while A's last bytes
    are still on their way, part 1 is sent again as B and finishes; then A finishes. The client completes
    with both ETags in the order the answers came (B, then A): A finished last, so A is the object."""
    c = gateway.client()
    key = "resend"
    reads = 0

    def count() -> None:
        nonlocal reads
        reads += 1

    # How many times the client reads a body to its end (checksums first, then the send): only the
    # last of those is the send, when the interruption must come.
    dry = c.create_multipart_upload(Bucket=bucket, Key="dry-run")["UploadId"]
    c.upload_part(Bucket=bucket, Key="dry-run", UploadId=dry, PartNumber=1, Body=InterruptingBody(size, b"C", count))
    c.abort_multipart_upload(Bucket=bucket, Key="dry-run", UploadId=dry)
    assert reads >= 1

    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    answered: list[str] = []
    seen = 0

    def send_b_on_the_last_read() -> None:
        nonlocal seen
        seen += 1
        if seen == reads:
            b = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"B" * size)
            answered.append(b["ETag"])

    a = c.upload_part(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        PartNumber=1,
        Body=InterruptingBody(size, b"A", send_b_on_the_last_read),
    )
    answered.append(a["ETag"])
    assert len(answered) == 2 and answered[1] == '"{}"'.format(hashlib.md5(b"A" * size).hexdigest())
    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, answered[1])]

    parts = [{"PartNumber": 1, "ETag": etag} for etag in answered]
    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"A" * size


# == ListParts: page by page ================================================================================


def test_list_parts_pages_from_the_marker(gateway, bucket):
    """Paging ListParts with small pages gives every part once, in order, with S3's markers; a part that
    has a sidecar (several frames) is one part."""
    c = gateway.client()
    upload_id = c.create_multipart_upload(Bucket=bucket, Key="paged")["UploadId"]
    sizes = {n: (5 * MiB if n == 3 else 10 + n) for n in range(1, 26)}
    etags = {}
    for n, size in sizes.items():
        etags[n] = c.upload_part(Bucket=bucket, Key="paged", UploadId=upload_id, PartNumber=n, Body=b"p" * size)["ETag"]
    seen = []
    marker = 0
    for expected in (range(1, 11), range(11, 21), range(21, 26)):
        page = c.list_parts(Bucket=bucket, Key="paged", UploadId=upload_id, MaxParts=10, PartNumberMarker=marker)
        assert [p["PartNumber"] for p in page["Parts"]] == list(expected)
        assert [(p["ETag"], p["Size"]) for p in page["Parts"]] == [(etags[n], sizes[n]) for n in expected]
        assert page["IsTruncated"] == (expected.stop <= 25)
        if page["IsTruncated"]:
            assert page["NextPartNumberMarker"] == expected.stop - 1
        seen += [p["PartNumber"] for p in page["Parts"]]
        marker = expected.stop - 1
    assert seen == list(range(1, 26))
    paginator = c.get_paginator("list_parts")
    pages = paginator.paginate(Bucket=bucket, Key="paged", UploadId=upload_id, PaginationConfig={"PageSize": 7})
    assert [p["PartNumber"] for page in pages for p in page["Parts"]] == list(range(1, 26))
    c.abort_multipart_upload(Bucket=bucket, Key="paged", UploadId=upload_id)
