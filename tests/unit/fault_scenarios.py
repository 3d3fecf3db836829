"""The operations of the fault matrix: how each is set up, driven, and judged once the faults are off.

A scenario runs once clean (its trace gives the injection points), then once per fault,
each time on a fresh key. What every scenario promises under a fault:

- the client gets an error (5xx, or a cut connection once a read's head went out), never a
  success for a write that did not fully happen, never a complete read with wrong bytes;
- afterwards the key holds the previous version or the complete new one (or nothing, where
  nothing was there before), as GET, Range GET, HEAD-by-listing all agree;
- an interrupted upload can be finished or aborted, and then leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

from s4.codec import CodecError, iter_frames
from tests.faults import Call, Fault, FaultKind
from tests.unit.fault_gateway import BUCKET, FaultGateway, Reply, etag_of, md5_hex

KiB = 1024
FRAME = 16 * KiB
PART_MIN = 32 * KiB
"""The client-facing minimum part size in these tests (S3's 5 MiB, patched down to keep data small)."""
FAILURE_STATUSES = (500, 503)
"""What a backend failure may look like to a client: never a 4xx that blames the client or the key."""


def text(size: int, seed: int) -> bytes:
    """Log-like text: compresses well, never repeats exactly."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += (
            f"{rng.randrange(10**9)} {rng.choice(['INFO', 'WARN', 'ERROR'])} svc-{rng.randrange(40)} "
            f"GET /api/items/{rng.randrange(10**5)} status={rng.choice([200, 404, 500])}\n"
        ).encode()
    return bytes(out[:size])


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def multipart_etag(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


@dataclasses.dataclass(frozen=True)
class Version:
    data: bytes
    etag: str

    @classmethod
    def single(cls, data: bytes) -> Version:
        return cls(data, md5_hex(data))

    @classmethod
    def multipart(cls, parts: list[bytes]) -> Version:
        return cls(b"".join(parts), multipart_etag(parts))


@dataclasses.dataclass
class Outcome:
    """What the faulty request came to: the client's reply, or None when it hung and the client gave up."""

    fault: Fault | None
    reply: Reply | None

    @property
    def hung(self) -> bool:
        return self.reply is None

    @property
    def ok(self) -> bool:
        return self.reply is not None and self.reply.ok

    def describe(self) -> str:
        label = self.fault.label() if self.fault else "clean"
        if self.reply is None:
            return f"{label}: hung, client gave up"
        return f"{label}: status {self.reply.status}, {len(self.reply.body)} bytes, cut={self.reply.cut}"


def assert_failure(outcome: Outcome) -> None:
    """A request that did not succeed failed the way a backend failure should look."""
    reply = outcome.reply
    if reply is None or reply.ok:
        return
    if reply.cut and reply.status is not None and 200 <= reply.status < 300:
        return  # cut after the head: judged by the read's own check
    assert reply.status in FAILURE_STATUSES or reply.status is None, f"{outcome.describe()}: {reply.body[:300]!r}"


async def assert_holds(gw: FaultGateway, key: str, allowed: list[Version | None], why: str) -> Version | None:
    """The key holds one of ``allowed`` versions (None: nothing), completely, by every way of reading it."""
    reply = await gw.get(key)
    listed = await gw.list_keys()
    if reply.status == 404:
        assert None in allowed, f"{why}: the object is gone"
        assert key not in listed, f"{why}: listed but not readable"
        return None
    assert reply.ok, f"{why}: clean GET answered {reply.status} cut={reply.cut} {reply.body[:300]!r}"
    matches = [v for v in allowed if v is not None and v.data == reply.body]
    assert matches, f"{why}: GET returned {len(reply.body)} bytes that are no allowed version"
    version = matches[0]
    assert etag_of(reply) == version.etag, f"{why}: ETag {etag_of(reply)} for version {version.etag}"
    assert listed.get(key) == len(version.data), f"{why}: listed as {listed.get(key)} bytes"
    if version.data:
        first, last = len(version.data) // 3, (2 * len(version.data)) // 3
        ranged = await gw.get(key, (first, last))
        assert ranged.status == 206 and ranged.ok, f"{why}: Range GET answered {ranged.status}"
        assert ranged.body == version.data[first : last + 1], f"{why}: Range GET returned other bytes"
    return version


async def assert_no_leftovers(gw: FaultGateway, why: str) -> None:
    """No staging, no inner multipart upload, no temp file: nothing a finished request should leave."""
    staged = [k for k in await gw.inner_keys() if k.startswith(".s4mpu/")]
    assert not staged, f"{why}: staging left behind: {staged}"
    assert not await gw.inner_uploads(), f"{why}: an inner multipart upload was left open"
    assert not await gw.list_uploads(), f"{why}: an upload is still listed"
    assert not gw.temp_files(), f"{why}: temp files left: {gw.temp_files()}"


def assert_read(outcome: Outcome, truth: bytes, status: int) -> None:
    """A read under a fault: exactly the truth, or an error, or a strict prefix of it on a cut connection."""
    reply = outcome.reply
    if reply is None:
        return
    if reply.ok:
        assert reply.status == status and reply.body == truth, f"{outcome.describe()}: complete read, wrong bytes"
        return
    if reply.cut and reply.status is not None:
        assert reply.status == status, outcome.describe()
        assert len(reply.body) < len(truth) and truth.startswith(reply.body), f"{outcome.describe()}: bad prefix"
        return
    assert_failure(outcome)


class Scenario:
    """One operation: ``prepare`` a key with faults off, ``act`` under the fault, ``check`` with faults off.

    Subclasses are dataclasses whose first field is ``name``.
    """

    name: str
    max_byte_points: int = 6

    async def prepare(self, gw: FaultGateway, key: str) -> None:
        pass

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        raise NotImplementedError

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        raise NotImplementedError

    async def boundaries(self, gw: FaultGateway, key: str, calls: list[Call]) -> dict[int, set[int]]:
        """Byte positions that matter in the clean run's streamed calls, by call index (none by default)."""
        return {}


# --- single objects -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Put(Scenario):
    """PutObject over an existing version: afterwards the old one or the whole new one."""

    name: str
    old: Version
    new: Version

    async def prepare(self, gw: FaultGateway, key: str) -> None:
        assert (await gw.put(key, self.old.data)).ok

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.put(key, self.new.data)

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        assert_failure(outcome)
        if outcome.ok:
            assert etag_of(outcome.reply) == self.new.etag, outcome.describe()
        allowed: list[Version | None] = [self.new] if outcome.ok else [self.old, self.new]
        if outcome.fault is not None and outcome.fault.kind is FaultKind.TRUNCATE:
            allowed.append(None)  # the backend kept part of the new one: the gateway removes it
        await assert_holds(gw, key, allowed, outcome.describe())
        assert not gw.temp_files(), f"{outcome.describe()}: temp files left"


@dataclasses.dataclass
class Get(Scenario):
    """GetObject, whole or a range: exact bytes, an error, or a prefix on a cut connection; nothing damaged."""

    name: str
    version: Version
    byte_range: tuple[int, int] | None = None

    async def prepare(self, gw: FaultGateway, key: str) -> None:
        assert (await gw.put(key, self.version.data)).ok

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.get(key, self.byte_range)

    async def boundaries(self, gw: FaultGateway, key: str, calls: list[Call]) -> dict[int, set[int]]:
        """Where the object's frames start, in each read of it: a body cut exactly there still
        parses as whole frames, so only the totals can tell it is short."""
        stream = await gw.faulty.inner.get_object(BUCKET, key)
        try:
            stored = b"".join([chunk async for chunk in stream.body])
        finally:
            await stream.aclose()
        try:
            starts = [frame.offset for frame in iter_frames([stored])]
        except CodecError:
            return {}  # stored raw: no frames
        found: dict[int, set[int]] = {}
        for call in calls:
            if call.method == "get_object" and call.args[1] == key:
                byte_range = call.args[2]
                base = 0 if byte_range is None else byte_range.start
                found[call.index] = {start - base for start in starts if start > base}
        return found

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        if self.byte_range is None:
            assert_read(outcome, self.version.data, 200)
        else:
            first, last = self.byte_range
            assert_read(outcome, self.version.data[first : last + 1], 206)
        await assert_holds(gw, key, [self.version], outcome.describe())


@dataclasses.dataclass
class Copy(Scenario):
    """CopyObject onto an existing key: the destination is the old one or the whole source; the source intact."""

    name: str
    source: Version
    old: Version

    async def prepare(self, gw: FaultGateway, key: str) -> None:
        assert (await gw.put(key + ".src", self.source.data)).ok
        assert (await gw.put(key, self.old.data)).ok

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.request("PUT", key, headers={"x-amz-copy-source": f"/{BUCKET}/{key}.src"})

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        assert_failure(outcome)
        if outcome.ok:
            assert outcome.reply.xml("ETag") == [f'"{self.source.etag}"'], outcome.describe()
        allowed = [self.source] if outcome.ok else [self.old, self.source]
        await assert_holds(gw, key, allowed, outcome.describe())
        await assert_holds(gw, key + ".src", [self.source], outcome.describe() + " (source)")


# --- multipart ----------------------------------------------------------------------------------------


OLD_UPLOAD_KEY_VERSION = Version.single(text(9 * KiB, 4))
"""What the key of an upload holds before the upload completes."""


@dataclasses.dataclass
class Multipart(Scenario):
    """An upload of three parts: one big incompressible (copied at Complete), two small (concatenated)."""

    max_byte_points = 4  # many streamed calls per Complete: fewer points in each keeps the sweep quick
    name: str
    parts: tuple[bytes, ...] = (noise(40 * KiB, 1), text(48 * KiB, 2), text(10 * KiB, 3))
    old: Version = OLD_UPLOAD_KEY_VERSION
    uploads: dict[str, str] = dataclasses.field(default_factory=dict)
    etags: dict[str, list[tuple[int, str]]] = dataclasses.field(default_factory=dict)

    @property
    def new(self) -> Version:
        return Version.multipart(list(self.parts))

    async def prepare(self, gw: FaultGateway, key: str) -> None:
        assert (await gw.put(key, self.old.data)).ok
        upload_id = await gw.create_upload(key)
        self.uploads[key] = upload_id
        self.etags[key] = []
        for number, data in enumerate(self.parts, 1):
            reply = await gw.upload_part(key, upload_id, number, data)
            assert reply.ok and etag_of(reply) == md5_hex(data), reply
            self.etags[key].append((number, etag_of(reply)))

    async def parts_listed(self, gw: FaultGateway, key: str) -> dict[int, tuple[str, int]]:
        reply = await gw.request("GET", key, f"uploadId={self.uploads[key]}")
        assert reply.status == 200, reply
        numbers = map(int, reply.xml("PartNumber"))
        return dict(zip(numbers, zip(reply.xml("ETag"), map(int, reply.xml("Size")), strict=True), strict=True))

    async def finish(self, gw: FaultGateway, key: str, parts: list[bytes], why: str) -> None:
        """Complete the upload (faults off) and check the result and that nothing is left behind."""
        etags = [(n, md5_hex(p)) for n, p in enumerate(parts, 1)]
        reply = await gw.complete(key, self.uploads[key], etags)
        expected = Version.multipart(parts)
        assert reply.status == 200 and reply.xml("ETag") == [f'"{expected.etag}"'], f"{why}: retried Complete {reply}"
        await assert_holds(gw, key, [expected], why + " (completed)")
        await assert_no_leftovers(gw, why)


@dataclasses.dataclass
class UploadPart(Multipart):
    """Replacing part 2 under a fault: the part is the old or the whole new one, and the upload completes."""

    replacement: bytes = text(48 * KiB, 5)

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.upload_part(key, self.uploads[key], 2, self.replacement)

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        """Part 2 is the old or the whole new one, or (after a failure) gone until the client retries."""
        assert_failure(outcome)
        why = outcome.describe()
        listed = await self.parts_listed(gw, key)
        old, new = self.parts[1], self.replacement
        states = {(f'"{md5_hex(old)}"', len(old)): old, (f'"{md5_hex(new)}"', len(new)): new}
        if outcome.ok:
            assert states.get(listed.get(2)) == new, f"{why}: success, but part 2 is listed as {listed.get(2)}"
        elif 2 not in listed:
            retry = await gw.upload_part(key, self.uploads[key], 2, new)
            assert retry.ok, f"{why}: retried UploadPart {retry}"
            listed = await self.parts_listed(gw, key)
        assert listed.get(2) in states, f"{why}: part 2 listed as {listed.get(2)}"
        parts = list(self.parts)
        parts[1] = states[listed[2]]
        await self.finish(gw, key, parts, why)


@dataclasses.dataclass
class Complete(Multipart):
    """Complete under a fault: the key is the old object or the whole new one; a retry completes it."""

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.complete(key, self.uploads[key], self.etags[key])

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        assert_failure(outcome)
        why = outcome.describe()
        if outcome.ok:
            assert outcome.reply.xml("ETag") == [f'"{self.new.etag}"'], why
        allowed = [self.new] if outcome.ok else [self.old, self.new]
        await assert_holds(gw, key, allowed, why)
        await self.finish(gw, key, list(self.parts), why)


@dataclasses.dataclass
class Abort(Multipart):
    """Abort under a fault: the upload is gone, or still listed so a retry removes it; the key untouched."""

    async def act(self, gw: FaultGateway, key: str) -> Reply:
        return await gw.request("DELETE", key, f"uploadId={self.uploads[key]}")

    async def check(self, gw: FaultGateway, key: str, outcome: Outcome) -> None:
        assert_failure(outcome)
        why = outcome.describe()
        upload_id = self.uploads[key]
        if outcome.ok:
            assert upload_id not in await gw.list_uploads(), f"{why}: aborted but still listed"
        else:
            retry = await gw.request("DELETE", key, f"uploadId={upload_id}")
            gone = upload_id not in await gw.list_uploads()
            assert retry.status == 204 or (retry.status == 404 and gone), f"{why}: retried Abort {retry}"
        await assert_holds(gw, key, [self.old], why)
        await assert_no_leftovers(gw, why)
