"""The embedded object store: object bytes in files, metadata and the listing index in SQLite.

A data directory holds::

    index.sqlite3        buckets, objects, multipart uploads and parts, bucket documents (WAL mode)
    lock                 flock'ed shared while a store has the directory open, exclusive for the sweep
    tmp/<id>             bodies being written
    objects/ab/cd/<id>   committed object and part bodies; <id> is a random uuid4 hex

An object is one file, or (completed from a multipart upload) its parts' files in order: Complete
makes the parts the object in one transaction and copies nothing, so it needs no room beyond a row.
Files are never modified once written, so UploadPartCopy of a whole object hard-links its file.

Keys live only in SQLite and never in a path, so no key can name a file outside the data
directory. A write streams into ``tmp/``, is fsynced and renamed under ``objects/``, and becomes
visible with one SQLite transaction; the file it replaced is deleted after that commit. A crash at
any point leaves at worst an unreferenced file, which the next store to open the directory while no
other store has it open sweeps away. Several processes may share a directory: everything that must
be seen by all of them (uploads, parts) is in the database, and SQLite serialises the writers.

A reader keeps what it reads: it holds an object's one file open (deleting it leaves the open file
readable), or the *lease* of an object in several files (a shared flock on the first file, which a
deleter must take exclusively first; while a reader holds it, deleting waits and is retried).
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import itertools
import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterable, Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from s4.store.base import (
    MAX_PARTS,
    NULL_VERSION,
    VERSIONING_ENABLED,
    VERSIONING_SUSPENDED,
    BucketInfo,
    ByteRange,
    CompletionChecksums,
    DeleteResult,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStream,
    PartInfo,
    PartsPage,
    SourceChanged,
    StoreError,
    UploadChecksum,
    UploadInfo,
    UploadsPage,
    VersionsPage,
    WriteCondition,
)
from s4.store.checksums import not_kept
from s4.store.multipart import multipart_etag, validate_completion

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
READ_CHUNK = 1024 * 1024
"""Bytes one hop to a file thread reads: each hop costs the event loop a wakeup and a GIL hand-over,
so 1 MiB reads take 5-10% less CPU per GB served than 256 KiB ones (benchmarks/scale_bench.py)."""
SMALL_READ = 256 * 1024
"""An object of at most this many bytes is opened, read whole and closed in one hop to a file thread
(a GET of a small object made two: the open, then the read). Small enough that reading all of it for a
range of a few bytes costs less than the hop it saves (~55 us of CPU)."""
WRITE_BATCH = 1024 * 1024
"""Body chunks are gathered up to this size before one hop to a file thread writes them."""
REAP_INTERVAL_S = 1.0
"""How often the files of replaced objects that a reader still held are tried again."""
BUSY_TIMEOUT_S = 10.0
FILE_WORKERS = 8
LIST_BATCH = 1000
INDEX_NAME = "index.sqlite3"
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
MIN_FREE_BYTES = 64 * 1024 * 1024
MIN_FREE_FRACTION = 0.01
"""Writes of bodies are refused while the data directory's filesystem has less free than the smaller of
these (64 MiB, or 1% of a small filesystem): the room left lets deletes commit, which frees space."""
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OPEN_ATTEMPTS = 16
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS buckets (
        name TEXT PRIMARY KEY,
        created_us INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # Keys are TEXT with the default BINARY collation: SQLite compares them with memcmp on their
    # UTF-8 bytes, which is exactly S3's listing order (and code point order, Python's str order).
    """CREATE TABLE IF NOT EXISTS objects (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        file TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        modified_us INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        part_sizes TEXT,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID""",
    # Upload ids start with their creation time in fixed-width hex, so (key, upload_id) is S3's
    # order of uploads: by key, then by initiation.
    """CREATE TABLE IF NOT EXISTS uploads (
        upload_id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        initiated_us INTEGER NOT NULL,
        attributes TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id)",
    """CREATE TABLE IF NOT EXISTS parts (
        upload_id TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        file TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        modified_us INTEGER NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    ) WITHOUT ROWID""",
    # Versions of objects other than the current ones (the ``objects`` rows) and every delete marker
    # (``delete_marker`` 1, no file), newest first per key. ``modified_us`` strictly increases per key
    # (see _db_stamp), so it orders a key's versions; ``version_id`` NULL is the null version.
    """CREATE TABLE IF NOT EXISTS versions (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        file TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        modified_us INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        part_sizes TEXT,
        version_id TEXT,
        delete_marker INTEGER NOT NULL,
        PRIMARY KEY (bucket, key, modified_us DESC)
    ) WITHOUT ROWID""",
    # The S3 documents of a bucket (CORS, lifecycle, policy, ACL...), by name; they go with the bucket.
    """CREATE TABLE IF NOT EXISTS bucket_documents (
        bucket TEXT NOT NULL,
        name TEXT NOT NULL,
        document BLOB NOT NULL,
        PRIMARY KEY (bucket, name)
    ) WITHOUT ROWID""",
)
_OBJECT_COLUMNS = "key, file, size, etag, modified_us, attributes, part_sizes, version_id"
_ADDED_COLUMNS = (("buckets", "versioning", "TEXT"), ("objects", "version_id", "TEXT"))
"""Columns later than the first schema, added to a data directory made before them (NULL: never versioned)."""
_VERSION_ID_LENGTH = 32


# -- small pure helpers ---------------------------------------------------------------------------


def _now_us() -> int:
    return time.time_ns() // 1000


def _datetime(us: int) -> dt.datetime:
    # Integer arithmetic: a float timestamp would lose microseconds.
    return _EPOCH + dt.timedelta(microseconds=us)


def _check_key(key: str) -> None:
    """S3's key rules: 1 to 1024 bytes of UTF-8, anything else allowed (the path never sees it)."""
    if not key:
        raise StoreError("InvalidArgument", "Object key must not be empty", resource=key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise StoreError("InvalidArgument", "Object key is not valid UTF-8", resource=key) from None
    if size > MAX_KEY_BYTES:
        raise StoreError("KeyTooLongError", "Your key is too long", resource=key)


def _new_version_id(stamp_us: int) -> str:
    """A version id: its time first (fixed-width hex), then randomness; URL-safe, 32 characters."""
    return f"{stamp_us:016x}{secrets.token_hex(8)}"


def _version_column(version_id: str) -> str | None:
    """The ``version_id`` column value a client's id names (None: the null version); InvalidArgument
    for an id this store never makes, as S3 answers."""
    if version_id == NULL_VERSION:
        return None
    if len(version_id) != _VERSION_ID_LENGTH or any(c not in "0123456789abcdef" for c in version_id):
        raise StoreError("InvalidArgument", "Invalid version id specified", resource=version_id)
    return version_id


def _no_such_version(version_id: str) -> StoreError:
    return StoreError(
        "NoSuchVersion", "The specified version does not exist.", resource=version_id, version_id=version_id
    )


def _check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PARTS:
        raise StoreError("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")


def _successor(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: there is none).

    Code point order is UTF-8 byte order, so this is the exclusive upper bound of a prefix range
    in SQLite's BINARY order too. Surrogates cannot appear in stored keys, so they are skipped.
    """
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def _rollup(key: str, prefix: str, delimiter: str | None) -> str | None:
    """The common prefix ``key`` rolls up into, or None when it is listed as itself."""
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def _encode_attributes(attributes: ObjectAttributes, tags: Mapping[str, str] | None = None) -> str:
    """The ``attributes`` column: the object's attributes, and its tags (a ``tags`` member, absent
    when it has none) as object state beside them, so whatever carries an object's attributes
    (a copy, a Complete, a replacement) carries its tags too, and PutObjectTagging rewrites a row,
    never a file."""
    # ensure_ascii (the default) escapes lone surrogates, which SQLite's UTF-8 could not store.
    columns: dict[str, object] = {
        "content_type": attributes.content_type,
        "metadata": attributes.metadata,
        "headers": attributes.headers,
        "checksums": attributes.checksums,
    }
    if tags:
        columns["tags"] = dict(tags)
    return json.dumps(columns, separators=(",", ":"))


def _decode_tags(text: str) -> dict[str, str]:
    return dict(json.loads(text).get("tags") or {})


def _with_tags(text: str, tags: Mapping[str, str]) -> str:
    """An ``attributes`` column with its tags replaced (removed when ``tags`` is empty)."""
    columns = json.loads(text)
    columns.pop("tags", None)
    if tags:
        columns["tags"] = dict(tags)
    return json.dumps(columns, separators=(",", ":"))


def _decode_attributes(text: str) -> ObjectAttributes:
    raw = json.loads(text)
    return ObjectAttributes(
        content_type=raw.get("content_type"),
        metadata=dict(raw.get("metadata") or {}),
        headers=dict(raw.get("headers") or {}),
        checksums=dict(raw.get("checksums") or {}),
    )


def _discard(path: Path) -> None:
    """Delete a file that is no longer wanted; failing is harmless, the start-up sweep retries."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete %s (%s); the next start-up sweep will", path, exc)


def _close_and_discard(file: IO[bytes], path: Path) -> None:
    file.close()
    _discard(path)


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (POSIX keeps directory entries apart from data)."""
    with contextlib.suppress(OSError):  # Not every platform can open a directory.
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _segments(file: str, size: int) -> list[tuple[str, int]]:
    """The files an object's bytes are in, in order, with their sizes (the ``file`` column holds one id,
    or a JSON list of ``[id, size]`` for an object made of its multipart upload's part files)."""
    if file.startswith("["):
        return [(str(file_id), int(length)) for file_id, length in json.loads(file)]
    return [(file, size)]


def _file_ids(file: str) -> list[str]:
    return [file_id for file_id, _ in _segments(file, 0)]


def _files_column(files: Sequence[str], sizes: Sequence[int]) -> str:
    if len(files) == 1:
        return files[0]
    return json.dumps([[file_id, size] for file_id, size in zip(files, sizes, strict=True)], separators=(",", ":"))


class _PartsChanged(Exception):
    """A part was uploaded again between Complete's look at the parts and its commit: look again."""


class _Lease:
    """A shared flock on the first file of an object kept in several files. While any reader holds
    one, no deleter removes any of the object's files: it must take the lock exclusively first."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # Releases the lock.


def _take_lease(head: Path) -> _Lease | bool:
    """The lease of the object whose first file is ``head``; False when that file is gone (the object
    was replaced and deleted), True when a deleter holds it right now (look again shortly)."""
    try:
        fd = os.open(head, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        # Locked after a deleter finished: the name is gone although the open file is not.
        if os.stat(head).st_ino != os.fstat(fd).st_ino:
            return False
        lease = _Lease(fd)
        fd = -1  # The lease owns it now.
        return lease
    except BlockingIOError:
        return True
    except FileNotFoundError:
        return False
    finally:
        if fd >= 0:
            os.close(fd)


def _private_dir(path: Path, parents: bool = False) -> None:
    """A directory only the gateway's user may enter (0700 whatever the umask), made if missing.

    An existing data directory is made private too: whatever it holds is then out of others' reach.
    """
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(PRIVATE_DIR)
    except FileExistsError:
        if path.is_dir() and path.stat().st_mode & 0o777 == PRIVATE_DIR:
            return
    try:
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode goes through the umask
    except OSError as exc:  # someone else's directory: usable, but say it is not private
        log.warning("could not make %s private (mode 0700): %s", path, exc)


def _create_private(path: Path) -> IO[bytes]:
    """A new file only the gateway's user can read (0600: the umask can only take bits away)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb")


def _write_all(file: IO[bytes], chunks: list[bytes], md5: Any) -> None:
    for chunk in chunks:
        if md5 is not None:
            md5.update(chunk)
        file.write(chunk)


def _finish_file(file: IO[bytes], durable: bool) -> None:
    file.flush()
    if durable:
        os.fsync(file.fileno())


def _write_last(file: IO[bytes], chunks: list[bytes], md5: Any, durable: bool) -> None:
    """The last batch and the flush (and fsync) in one file-thread job: one hop less per write."""
    _write_all(file, chunks, md5)
    _finish_file(file, durable)


def _read_at(file: IO[bytes], position: int, size: int) -> bytes:
    file.seek(position)
    return file.read(size)


def _read_whole(path: Path, size: int) -> bytes:
    with open(path, "rb") as file:
        return file.read(size)


def _translate_sqlite_errors(fn: Callable[..., T], *args: Any) -> T:
    """Run one database job, turning the errors a client can cause or retry into S3 errors."""
    try:
        return fn(*args)
    except UnicodeEncodeError:
        raise StoreError("InvalidArgument", "A name or marker is not valid UTF-8") from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError("SlowDown", "The object index is busy; please retry") from exc
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            raise StoreError.storage_full() from exc
        raise
    except OSError as exc:
        if exc.errno in STORAGE_FULL_ERRNOS:
            raise StoreError.storage_full() from exc
        raise


def _translate_os_errors(fn: Callable[..., T], *args: Any) -> T:
    """Run one file job; a full filesystem or an exhausted quota is the client's 507, not a 500."""
    try:
        return fn(*args)
    except OSError as exc:
        if exc.errno in STORAGE_FULL_ERRNOS:
            raise StoreError.storage_full() from exc
        raise


# -- internal records -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _ObjectRow:
    key: str
    file: str
    size: int
    etag: str
    modified_us: int
    attributes: str
    part_sizes: str | None
    version_id: str | None = None
    """The column: None for the null version (or every object of a never-versioned bucket)."""
    versioned: bool = False
    """Whether the bucket is or was versioned (then the null version's id is ``"null"``); not a column."""

    def columns(self) -> tuple[Any, ...]:
        return (
            self.key,
            self.file,
            self.size,
            self.etag,
            self.modified_us,
            self.attributes,
            self.part_sizes,
            self.version_id,
        )

    @property
    def reported_version(self) -> str | None:
        return (self.version_id or NULL_VERSION) if self.versioned else None

    def info(self, bucket: str) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=self.key,
            size=self.size,
            etag=self.etag,
            last_modified=_datetime(self.modified_us),
            attributes=_decode_attributes(self.attributes),
            part_sizes=None if self.part_sizes is None else tuple(json.loads(self.part_sizes)),
            tag_count=len(_decode_tags(self.attributes)) if '"tags":' in self.attributes else 0,
            version_id=self.reported_version,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Spooled:
    """A complete body at its final name under ``objects/``, durable, referenced by no row yet (not visible)."""

    file_id: str
    path: Path
    size: int
    etag: str
    """The body's MD5; or, where the writer keeps the content's ETag itself, the spool's unique id."""


class _WorkerFile:
    """A file driven from worker threads one call at a time.

    Closing waits for the call in flight: when the awaiting task is cancelled the thread may still be
    inside ``write``, and closing the descriptor under it could hand the bytes to a file that reuses
    the descriptor number.
    """

    def __init__(self, pool: concurrent.futures.Executor, file: IO[bytes]) -> None:
        self._pool = pool
        self._file: IO[bytes] | None = file
        self._in_flight: concurrent.futures.Future[Any] | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._file is None:
            raise ValueError("file is closed")
        future = self._pool.submit(_translate_os_errors, fn, self._file, *args)
        self._in_flight = future
        return await asyncio.wrap_future(future)

    def close(self, then: Callable[[], None] | None = None) -> None:
        file, self._file = self._file, None
        if file is None:
            return

        def finish(_: object = None) -> None:
            file.close()
            if then is not None:
                then()

        if self._in_flight is None:
            finish()
        else:
            self._in_flight.add_done_callback(finish)  # Runs at once when already done.


class _FileBody:
    """The bytes ``[position, position + length)`` of an open object file, in chunks.

    Holding the open file is what lets a reader finish the version it started even when a writer
    replaces the object and deletes the old file meanwhile. Closing releases the file whether or not
    iteration ever started, which an async generator's ``finally`` would not.
    """

    def __init__(self, pool: concurrent.futures.Executor, file: IO[bytes], position: int, length: int) -> None:
        self._file = _WorkerFile(pool, file)
        self._position = position
        self._remaining = length
        if length <= 0:
            self._file.close()

    def __aiter__(self) -> _FileBody:
        return self

    async def __anext__(self) -> bytes:
        if self._remaining <= 0:
            self._file.close()
            raise StopAsyncIteration
        data = await self._file.call(_read_at, self._position, min(READ_CHUNK, self._remaining))
        if not data:
            self._file.close()
            raise StoreError("InternalError", "An object file is shorter than its recorded size")
        self._position += len(data)
        self._remaining -= len(data)
        if self._remaining <= 0:
            self._file.close()
        return data

    async def aclose(self) -> None:
        self._remaining = 0
        self._file.close()


class _BytesBody:
    """The bytes of an object read whole when it was opened (see SMALL_READ): one chunk, no file held."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _BytesBody:
        return self

    async def __anext__(self) -> bytes:
        data, self._data = self._data, None
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        self._data = None


class _SegmentsBody:
    """The bytes ``[position, position + length)`` of an object kept in several files, read one file
    after the other while ``lease`` keeps all of them from deletion. Closing releases the lease."""

    def __init__(
        self,
        pool: concurrent.futures.Executor,
        segments: Sequence[tuple[Path, int]],
        lease: _Lease,
        position: int,
        length: int,
    ) -> None:
        self._pool = pool
        self._paths = [path for path, _ in segments]
        self._sizes = [size for _, size in segments]
        self._starts = list(itertools.accumulate(self._sizes, initial=0))[:-1]
        self._lease: _Lease | None = lease
        self._position = position
        self._remaining = length
        self._current: _FileBody | None = None
        if length <= 0:
            lease.close()

    def __aiter__(self) -> _SegmentsBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            while self._remaining > 0:
                if self._current is None:
                    self._current = await self._open_at(self._position)
                try:
                    data = await anext(self._current)
                except StopAsyncIteration:
                    self._current = None
                    continue
                self._position += len(data)
                self._remaining -= len(data)
                return data
        except BaseException:
            await self.aclose()
            raise
        await self.aclose()
        raise StopAsyncIteration

    async def _open_at(self, position: int) -> _FileBody:
        index = bisect.bisect_right(self._starts, position) - 1
        while index < len(self._sizes) and self._sizes[index] == 0:
            index += 1  # An empty part holds no byte.
        if index >= len(self._sizes) or position - self._starts[index] >= self._sizes[index]:
            raise StoreError("InternalError", "An object's files are shorter than its recorded size")
        try:
            file = await asyncio.get_running_loop().run_in_executor(self._pool, open, self._paths[index], "rb")
        except FileNotFoundError:
            raise StoreError("InternalError", "A part of the object is missing from the store") from None
        offset = position - self._starts[index]
        return _FileBody(self._pool, file, offset, min(self._sizes[index] - offset, self._remaining))

    async def aclose(self) -> None:
        self._remaining = 0
        current, self._current = self._current, None
        if current is not None:
            await current.aclose()
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.close()


# -- the store ------------------------------------------------------------------------------------


class FilesystemStore:
    """The embedded default ObjectStore; see the module docstring for the on-disk layout.

    Use ``store = await FilesystemStore.open(path)`` (or ``async with await FilesystemStore.open(path)``)
    and ``await store.close()``. All SQLite work runs on one dedicated thread holding the store's only
    connection; file I/O runs in a small thread pool, so the event loop never blocks on either.
    """

    reports_replaced = True
    """Writes and deletes tell what they removed (``ObjectInfo.replaced``, ``DeleteResult.removed``)."""

    def __init__(self, data_dir: Path | str, *, durable: bool = True) -> None:
        """Not usable until started; prefer ``await FilesystemStore.open(data_dir)``.

        ``durable=False`` skips every fsync: still consistent after a process crash (the page cache
        survives it) but not after a power loss. For tests and throw-away data only.
        """
        self.data_dir = Path(data_dir)
        self._tmp = self.data_dir / "tmp"
        self._objects = self.data_dir / "objects"
        self._durable = durable
        self._db_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="s4-sqlite")
        self._files = concurrent.futures.ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="s4-files")
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deferred: list[list[str]] = []
        """Files of replaced objects a reader still held when they were to go; the reaper retries them."""
        self._deferred_lock = threading.Lock()
        self._reaper: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, data_dir: Path | str, *, durable: bool = True) -> FilesystemStore:
        store = cls(data_dir, durable=durable)
        try:
            await store._start()
        except BaseException:
            await store.close()
            raise
        return store

    async def __aenter__(self) -> FilesystemStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def min_part_size(self) -> int:
        return 0

    async def ping(self) -> None:
        """Raise StoreError unless the store can serve writes: the index answers, and the data directory's
        filesystem has room (XMinioStorageFull saying how much is left: what /ready reports)."""
        short = await self._io(self._short_of_room)
        if short is not None:
            raise StoreError("XMinioStorageFull", short)
        await self._db(self._db_list_buckets)

    def _create_spool(self, path: Path) -> IO[bytes] | None:
        """A new spool file at ``path``, or None (nothing created) while the filesystem is short of room:
        the check and the create in one file-thread job."""
        if self._short_of_room() is not None:
            return None
        return _create_private(path)

    def _abandon_spool(self, done: asyncio.Future[IO[bytes] | None], path: Path) -> None:
        """Close and remove a spool file created for a PUT that was cancelled meanwhile."""
        if done.cancelled() or done.exception() is not None or done.result() is None:
            return
        file = done.result()
        with contextlib.suppress(RuntimeError):  # the store is closing: the start-up sweep removes it
            self._files.submit(_close_and_discard, file, path)

    def _short_of_room(self) -> str | None:
        """Why the data directory's filesystem is too full for writes, or None while it has room."""
        stats = os.statvfs(self.data_dir)
        free = stats.f_bavail * stats.f_frsize
        reserve = min(MIN_FREE_BYTES, int(stats.f_blocks * stats.f_frsize * MIN_FREE_FRACTION))
        if free >= reserve and free > 0:
            return None
        return f"the filesystem of {self.data_dir} has {free} bytes free, under the {reserve}-byte reserve for writes"

    async def close(self) -> None:
        """Finish the commits already under way, then release the connection, threads and lock."""
        if self._closed:
            return
        self._closed = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._reaper is not None:
            self._reaper.cancel()
        with contextlib.suppress(RuntimeError, OSError):
            await self._io(self._retry_deferred)  # What is still held is left for the next sweep.
        with contextlib.suppress(RuntimeError):
            await self._db(self._disconnect)
        self._db_thread.shutdown(wait=False)
        self._files.shutdown(wait=False)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # Releases the flock.
            self._lock_fd = None

    # -- buckets --

    async def list_buckets(self) -> list[BucketInfo]:
        return await self._db(self._db_list_buckets)

    async def create_bucket(self, bucket: str) -> None:
        await self._db(self._db_create_bucket, bucket)

    async def delete_bucket(self, bucket: str) -> None:
        """Refused while objects are in the bucket; multipart uploads in progress are aborted with it, as S3 does."""
        obsolete = await self._db(self._db_delete_bucket, bucket)
        await self._discard_obsolete(obsolete)

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return await self._db(self._db_head_bucket, bucket)

    # -- objects --

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        attributes: ObjectAttributes,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        content_etag: bool = True,
    ) -> ObjectInfo:
        _check_key(key)
        await self._db(self._db_require_bucket, bucket)  # Refuse before reading a body nobody can store.
        spooled = await self._spool(body, hashed=content_etag)
        return await self._detached(
            self._publish_object(bucket, key, spooled, spooled.etag, attributes, None, condition=condition, tags=tags)
        )

    async def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        _check_key(key)
        row = await self._db(self._db_lookup, bucket, key, version_id)
        return row.info(bucket)

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> ObjectStream:
        _check_key(key)
        return (await self._read(bucket, key, byte_range, if_match, version_id))[1]

    async def _read(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> tuple[_ObjectRow, ObjectStream]:
        """The object's row and a stream of its bytes: the two describe the same version."""
        row, opened = await self._open_object(bucket, key, version_id, read_whole_below=SMALL_READ)
        try:
            if if_match is not None and row.etag != if_match:
                raise StoreError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
            first, last = (0, row.size - 1) if byte_range is None else byte_range.resolve(row.size)
        except BaseException:
            if not isinstance(opened, bytes):
                opened.close()
            raise
        body: _BytesBody | _FileBody | _SegmentsBody
        if isinstance(opened, bytes):
            if len(opened) != row.size:
                raise StoreError("InternalError", "An object file is shorter than its recorded size")
            body = _BytesBody(opened[first : last + 1])
        elif isinstance(opened, _Lease):
            segments = [(self._object_path(f), size) for f, size in _segments(row.file, row.size)]
            body = _SegmentsBody(self._files, segments, opened, first, last - first + 1)
        else:
            body = _FileBody(self._files, opened, first, last - first + 1)
        return row, ObjectStream(row.info(bucket), body, None if byte_range is None else (first, last))

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> DeleteResult:
        _check_key(key)
        if version_id is not None:
            _version_column(version_id)
        return await self._detached(self._delete_object(bucket, key, version_id))

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        attributes: ObjectAttributes | None,
        condition: WriteCondition | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        src_version_id: str | None = None,
        src_etag: str | None = None,
    ) -> ObjectInfo:
        _check_key(src_key)
        _check_key(dst_key)
        # Detached: S3 finishes a copy it has started even if the client goes away.
        return await self._detached(
            self._copy_object(
                src_bucket, src_key, dst_bucket, dst_key, attributes, condition, tags, src_version_id, src_etag
            )
        )

    async def get_object_tagging(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, str]:
        _check_key(key)
        return _decode_tags((await self._db(self._db_lookup, bucket, key, version_id)).attributes)

    async def put_object_tagging(
        self, bucket: str, key: str, tags: Mapping[str, str], *, version_id: str | None = None
    ) -> None:
        _check_key(key)
        await self._db(self._db_set_tags, bucket, key, dict(tags), version_id)

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        return await self._db(self._db_list_objects, bucket, prefix, delimiter or None, start_after, max_keys)

    # -- versioning --

    async def get_bucket_versioning(self, bucket: str) -> str | None:
        return await self._db(self._db_versioning, bucket)

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        if status not in (VERSIONING_ENABLED, VERSIONING_SUSPENDED):
            raise StoreError("MalformedXML", "The XML you provided was not well-formed or did not validate")
        await self._db(self._db_set_versioning, bucket, status)

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionsPage:
        """Every version and delete marker, per key newest first (see _db_list_versions)."""
        return await self._db(
            self._db_list_versions, bucket, prefix, delimiter or None, key_marker, version_id_marker, max_keys
        )

    # -- multipart --

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        tags: Mapping[str, str] | None = None,
        checksum: UploadChecksum | None = None,
    ) -> str:
        if checksum is not None:
            raise not_kept()
        _check_key(key)
        return await self._db(self._db_create_upload, bucket, key, _encode_attributes(attributes, tags))

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: AsyncIterable[bytes]
    ) -> PartInfo:
        _check_key(key)
        _check_part_number(part_number)
        await self._db(self._db_require_upload, bucket, key, upload_id)
        spooled = await self._spool(body)
        return await self._detached(self._publish_part(bucket, key, upload_id, part_number, spooled))

    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        byte_range: ByteRange | None = None,
        *,
        src_version_id: str | None = None,
        src_etag: str | None = None,
    ) -> PartInfo:
        _check_key(key)
        _check_key(src_key)
        _check_part_number(part_number)
        return await self._detached(
            self._upload_part_copy(
                bucket, key, upload_id, part_number, src_bucket, src_key, byte_range, src_version_id, src_etag
            )
        )

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        condition: WriteCondition | None = None,
        *,
        checksums: CompletionChecksums | None = None,
    ) -> ObjectInfo:
        if checksums is not None:
            raise not_kept()
        _check_key(key)
        return await self._detached(self._complete(bucket, key, upload_id, list(parts), condition))

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        _check_key(key)
        await self._detached(self._abort(bucket, key, upload_id))

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, part_number_marker: int = 0, max_parts: int = 1000
    ) -> PartsPage:
        _check_key(key)
        return await self._db(self._db_list_parts, bucket, key, upload_id, part_number_marker, max_parts)

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        return await self._db(self._db_list_uploads, bucket, prefix, key_marker, upload_id_marker, max_uploads)

    # -- bucket documents --

    async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
        return (await self.get_bucket_documents(bucket, (name,)))[name]

    async def get_bucket_documents(self, bucket: str, names: Sequence[str]) -> dict[str, bytes | None]:
        return await self._db(self._db_get_documents, bucket, tuple(names))

    async def put_bucket_document(self, bucket: str, name: str, document: bytes) -> None:
        await self._db(self._db_put_document, bucket, name, bytes(document))

    async def delete_bucket_document(self, bucket: str, name: str) -> None:
        await self._db(self._db_delete_document, bucket, name)

    # -- plumbing --

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, _translate_sqlite_errors, fn, *args)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._files, _translate_os_errors, fn, *args)

    async def _detached(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a commit to its end even if the caller is cancelled halfway.

        Cancelling between the rename and the commit, or between the commit and deleting the
        replaced file, would only leave garbage for the sweep; but the commit itself may already
        be running on the database thread, so only the task that started it knows whether the new
        file is referenced.
        """
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # Retrieved here so an abandoned failure does not log as unhandled.

    def _object_path(self, file_id: str) -> Path:
        return self._objects / file_id[:2] / file_id[2:4] / file_id

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        exclusive = await self._io(self._take_lock)
        await self._db(self._connect)
        if exclusive:
            referenced = await self._db(self._db_referenced_files)
            await self._io(self._sweep, referenced)
            await self._io(self._share_lock)

    def _take_lock(self) -> bool:
        """True when no other store has the directory open: only then may the sweep run.

        A running store's temp files and its renamed-but-not-yet-committed files look exactly like
        a crashed one's, so the sweep must be sure nobody else is writing.
        """
        _private_dir(self.data_dir, parents=True)
        _private_dir(self._tmp)
        _private_dir(self._objects)
        self._lock_fd = os.open(self.data_dir / "lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        if fcntl is None:  # pragma: no cover - without flock a data directory is single-process
            return True
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            return False
        return True

    def _share_lock(self) -> None:
        if fcntl is not None and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)

    def _sweep(self, referenced: set[str]) -> None:
        """Delete temp files and object files no row points at: what a crash leaves behind."""
        for entry in os.scandir(self._tmp):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                _discard(Path(entry.path))
        for directory, _, names in os.walk(self._objects):
            for name in names:
                path = Path(directory) / name
                if name not in referenced or path != self._object_path(name):
                    _discard(path)

    async def _discard_obsolete(self, files: Sequence[str]) -> None:
        """``_discard_files`` on a file thread, with no hop at all when nothing became obsolete (a new key,
        a new part): each hop costs a wake-up of a file thread and of the event loop."""
        if files:
            await self._io(self._discard_files, files)

    def _discard_files(self, files: Sequence[str]) -> None:
        """Delete the files of rows that are gone (``file`` column values): one file at once (its readers
        hold it open), an object's several files once no reader holds their lease (or later)."""
        for file in files:
            file_ids = _file_ids(file)
            if len(file_ids) == 1:
                _discard(self._object_path(file_ids[0]))
            elif not self._discard_leased(file_ids):
                with self._deferred_lock:
                    self._deferred.append(file_ids)
                if self._loop is not None:
                    with contextlib.suppress(RuntimeError):  # The loop is gone: the next sweep deletes them.
                        self._loop.call_soon_threadsafe(self._start_reaper)

    def _discard_leased(self, file_ids: Sequence[str]) -> bool:
        """Delete an object's several files unless a reader holds their lease (False then). The first
        file, which carries the lease, goes last: while it is there, so is the rest."""
        head = self._object_path(file_ids[0])
        try:
            fd = os.open(head, os.O_RDONLY)
        except FileNotFoundError:
            fd = -1
        except OSError as exc:
            # The change that made these files obsolete has committed, and must not be answered as failed
            # for their sake. Out of descriptors: held, and tried again by the reaper; anything else
            # (EACCES) would fail every time, and is left to the start-up sweep.
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                log.warning("could not open %s to delete it (%s); trying again later", head, exc)
                return False
            log.warning("could not open %s to delete it (%s); the next start-up sweep will", head, exc)
            return True
        try:
            if fd >= 0 and fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
            for file_id in file_ids[1:]:
                _discard(self._object_path(file_id))
            _discard(head)
        finally:
            if fd >= 0:
                os.close(fd)
        return True

    def _retry_deferred(self) -> bool:
        """Try the held files again; True while some are still held."""
        with self._deferred_lock:
            pending, self._deferred = self._deferred, []
        held = [file_ids for file_ids in pending if not self._discard_leased(file_ids)]
        with self._deferred_lock:
            self._deferred.extend(held)
            return bool(self._deferred)

    def _start_reaper(self) -> None:
        if self._reaper is None and not self._closed:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        try:
            while not self._closed:
                await asyncio.sleep(REAP_INTERVAL_S)
                if not await self._io(self._retry_deferred):
                    return
        finally:
            self._reaper = None

    async def _spool(self, body: AsyncIterable[bytes], hashed: bool = True) -> _Spooled:
        """Stream a body into a fresh temp file, hashing it; nothing is left behind if it fails.

        ``hashed=False`` (a writer that keeps the content's ETag itself, see ObjectStore.put_object):
        no MD5, the ETag is the spool's unique id, which no other stored body has. MD5 was about
        1 CPU-second per GB stored, 12-15% of an incompressible PUT's samples, for an ETag no client
        sees. Refused before the first byte while the filesystem is below its reserve (see MIN_FREE_BYTES).
        """
        file_id = uuid.uuid4().hex
        path = self._tmp / file_id
        job = asyncio.ensure_future(self._io(self._create_spool, path))
        try:
            created = await asyncio.shield(job)
        except asyncio.CancelledError:
            # The thread still creates the file: whoever gets it closes and removes it, not the sweep.
            job.add_done_callback(lambda done: self._abandon_spool(done, path))
            raise
        if created is None:
            raise StoreError.storage_full()
        file = _WorkerFile(self._files, created)
        md5 = hashlib.md5() if hashed else None
        size = 0
        batch: list[bytes] = []
        batched = 0
        destination = self._object_path(file_id)
        try:
            async for chunk in body:
                if not chunk:
                    continue
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH:
                    await file.call(_write_all, batch, md5)
                    size, batch, batched = size + batched, [], 0
            # Only once the body ended without an error (a failed digest raises after its last chunk).
            await file.call(self._write_last_and_place, batch, md5, file_id, path)
            size += batched
        except BaseException:
            # Nothing is stored: the file is in tmp/, or at its final name that no row references yet.
            file.close(then=lambda: (_discard(path), _discard(destination)))
            raise
        file.close()
        return _Spooled(file_id, destination, size, file_id if md5 is None else md5.hexdigest())

    def _write_last_and_place(self, file: IO[bytes], chunks: list[bytes], md5: Any, file_id: str, path: Path) -> None:
        """A spool's last batch, its flush (and fsync) and its move to the final name, in one file-thread job:
        a PUT's write then costs two hops to a file thread (create, finish) besides its full batches."""
        _write_last(file, chunks, md5, self._durable)
        file.close()  # before the rename: a platform that cannot rename an open file would refuse it
        self._place(file_id, path)

    def _place(self, file_id: str, path: Path) -> Path:
        """Move a spooled body to its final name; durable before any row can point at it. On failure the
        spool (its caller) deletes the file wherever it is."""
        return self._enter(file_id, lambda destination: os.replace(path, destination))

    def _link_into_place(self, source: Path, file_id: str) -> Path:
        """A hard link to ``source`` at the final name of ``file_id``, made as ``_place`` moves a spool."""
        return self._enter(file_id, lambda destination: os.link(source, destination))

    def _enter(self, file_id: str, make: Callable[[Path], None]) -> Path:
        """``make`` the file of ``file_id`` at its final name, its directories first; durable before any row
        can point at it."""
        destination = self._object_path(file_id)
        if not destination.parent.is_dir():
            _private_dir(destination.parent.parent)
            _private_dir(destination.parent)
            if self._durable:
                _fsync_dir(destination.parent.parent)
                _fsync_dir(self._objects)
        make(destination)
        if self._durable:
            _fsync_dir(destination.parent)
        return destination

    async def _publish_object(
        self,
        bucket: str,
        key: str,
        spooled: _Spooled,
        etag: str,
        attributes: ObjectAttributes,
        part_sizes: tuple[int, ...] | None,
        upload_id: str | None = None,
        condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        encoded_sizes = None if part_sizes is None else json.dumps(list(part_sizes))
        encoded = _encode_attributes(attributes, tags)
        try:
            info, obsolete = await self._db(
                self._db_commit_object,
                bucket,
                _ObjectRow(key, spooled.file_id, spooled.size, etag, 0, encoded, encoded_sizes),
                upload_id,
                condition,
            )
        except Exception:
            await self._io(_discard, spooled.path)
            raise
        await self._discard_obsolete(obsolete)
        return info

    async def _publish_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, spooled: _Spooled
    ) -> PartInfo:
        try:
            part, obsolete = await self._db(self._db_commit_part, bucket, key, upload_id, part_number, spooled)
        except Exception:
            await self._io(_discard, spooled.path)
            raise
        await self._discard_obsolete(obsolete)
        return part

    async def _open_object(
        self, bucket: str, key: str, version_id: str | None = None, read_whole_below: int = 0
    ) -> tuple[_ObjectRow, IO[bytes] | _Lease | bytes]:
        """Look the object up and open its file (or take the lease of its files), which then stay
        readable whatever writers do; an object in one file of at most ``read_whole_below`` bytes is
        read whole instead, in the same hop.

        Between the lookup and the open a writer may replace the object and delete the file: look
        again. A row whose file stays missing is damage, not a race.
        """
        previous: str | None = None
        for _ in range(_OPEN_ATTEMPTS):
            row = await self._db(self._db_lookup, bucket, key, version_id)
            if row.file == previous:
                break
            file_ids = _file_ids(row.file)
            if len(file_ids) > 1:
                lease = await self._io(_take_lease, self._object_path(file_ids[0]))
                if isinstance(lease, _Lease):
                    return row, lease
                if lease:  # Being deleted this very moment: the row has changed, or will have.
                    await asyncio.sleep(0.01)
                    continue
            else:
                try:
                    if row.size <= read_whole_below:
                        return row, await self._io(_read_whole, self._object_path(row.file), row.size)
                    return row, await self._io(open, self._object_path(row.file), "rb")
                except FileNotFoundError:
                    pass
            previous = row.file
        raise StoreError("InternalError", "The object's data is missing from the store", resource=key)

    async def _delete_object(self, bucket: str, key: str, version_id: str | None) -> DeleteResult:
        result, obsolete = await self._db(self._db_delete_object, bucket, key, version_id)
        await self._discard_obsolete(obsolete)
        return result

    async def _copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        attributes: ObjectAttributes | None,
        condition: WriteCondition | None = None,
        tags: Mapping[str, str] | None = None,
        src_version_id: str | None = None,
        src_etag: str | None = None,
    ) -> ObjectInfo:
        await self._db(self._db_require_bucket, dst_bucket)
        source, stream = await self._read(src_bucket, src_key, None, None, src_version_id)
        try:
            if src_etag is not None and source.etag != src_etag:
                raise SourceChanged()
            spooled = await self._spool(stream.body)
        finally:
            await stream.aclose()
        kept = stream.info.attributes if attributes is None else attributes
        kept_tags = _decode_tags(source.attributes) if tags is None else tags
        # The MD5 of the bytes: the source's ETag for a single-part source stored with its MD5, as S3 gives.
        return await self._publish_object(
            dst_bucket, dst_key, spooled, spooled.etag, kept, None, condition=condition, tags=kept_tags
        )

    async def _upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        byte_range: ByteRange | None,
        src_version_id: str | None = None,
        src_etag: str | None = None,
    ) -> PartInfo:
        await self._db(self._db_require_upload, bucket, key, upload_id)
        spooled = await self._link_whole(src_bucket, src_key, byte_range, src_version_id, src_etag)
        if spooled is None:
            stream = await self.get_object(src_bucket, src_key, byte_range, version_id=src_version_id)
            try:
                if src_etag is not None and stream.info.etag != src_etag:
                    raise SourceChanged()
                spooled = await self._spool(stream.body)
            finally:
                await stream.aclose()
        return await self._publish_part(bucket, key, upload_id, part_number, spooled)

    async def _link_whole(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None,
        version_id: str | None = None,
        src_etag: str | None = None,
    ) -> _Spooled | None:
        """A hard link to the whole of a one-file object, as a spooled body with the object's ETag (its
        MD5, or the unique id given to a writer that keeps its own ETag, see put_object); files are never
        modified, so the link is a copy that takes no room. None where a copy is needed. An object whose
        ETag is not ``src_etag`` (when given) is SourceChanged, whichever lookup finds it."""
        previous: str | None = None
        for _ in range(_OPEN_ATTEMPTS):
            row = await self._db(self._db_lookup, bucket, key, version_id)
            if src_etag is not None and row.etag != src_etag:
                raise SourceChanged()
            if row.file == previous or row.part_sizes is not None or row.file.startswith("["):
                return None
            if byte_range is not None and byte_range.resolve(row.size) != (0, row.size - 1):
                return None
            file_id = uuid.uuid4().hex
            try:
                # Straight to the final name (referenced by no row yet): no hop to move it there.
                destination = await self._io(self._link_into_place, self._object_path(row.file), file_id)
            except FileNotFoundError:
                previous = row.file  # Replaced and deleted since the lookup: look again.
                continue
            except (OSError, StoreError):
                return None  # No hard links on this filesystem (or no room for one): copy.
            return _Spooled(file_id, destination, row.size, row.etag)
        return None

    async def _complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str]],
        condition: WriteCondition | None = None,
    ) -> ObjectInfo:
        """The chosen parts' files become the object's, in order, in one transaction: no byte is copied
        (Complete needs no room beyond a row), and nothing partial is ever visible."""
        for _ in range(_OPEN_ATTEMPTS):
            upload, uploaded = await self._db(self._db_upload_parts, bucket, key, upload_id)
            chosen = validate_completion(requested, {n: part for n, (part, _) in uploaded.items()}, self.min_part_size)
            sizes = [p.size for p in chosen]
            files = _files_column([uploaded[p.part_number][1] for p in chosen], sizes)
            attributes = _encode_attributes(upload.attributes, await self._db(self._db_upload_tags, upload_id))
            row = _ObjectRow(key, files, sum(sizes), multipart_etag(chosen), 0, attributes, json.dumps(sizes))
            try:
                info, obsolete = await self._db(self._db_commit_object, bucket, row, upload_id, condition)
            except _PartsChanged:
                continue  # A part was uploaded again since the lookup: check the request against the new one.
            await self._discard_obsolete(obsolete)
            return info
        raise StoreError("InternalError", "The upload's parts keep changing or are missing", resource=upload_id)

    async def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        obsolete = await self._db(self._db_abort, bucket, key, upload_id)
        await self._discard_obsolete(obsolete)

    # -- database thread: everything below runs on it, and only there --

    @property
    def _sql(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("FilesystemStore is not open")
        return self._conn

    def _connect(self) -> None:
        # SQLite creates the database 0644 and its -wal and -shm files with the database's mode.
        os.close(os.open(self.data_dir / INDEX_NAME, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
        conn = sqlite3.connect(self.data_dir / INDEX_NAME, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # WAL: readers never wait for a writer, and writers from several processes queue on the lock.
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: in WAL mode it fsyncs the log at each commit, so an acknowledged PUT survives a power
        # loss as it would on S3 (NORMAL could roll the last commits back). The object's own fsyncs
        # cost more than this one anyway. Without durability (tests) NORMAL still survives a crash.
        conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
        self._conn = conn
        with self._transaction():
            for statement in _SCHEMA:
                conn.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE for writers, so that they queue for the lock at the start instead
        of failing to upgrade a read lock midway; deferred (a consistent snapshot) for readers."""
        sql = self._sql
        sql.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield sql
        except BaseException:
            if sql.in_transaction:
                sql.execute("ROLLBACK")
            raise
        sql.execute("COMMIT")

    def _db_referenced_files(self) -> set[str]:
        with self._transaction(write=False) as sql:
            files = [
                file
                for (file,) in sql.execute(
                    "SELECT file FROM objects UNION ALL SELECT file FROM parts"
                    " UNION ALL SELECT file FROM versions WHERE delete_marker = 0"
                )
            ]
        return {file_id for file in files for file_id in _file_ids(file)}

    def _db_require_bucket(self, bucket: str) -> None:
        if self._sql.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
            raise StoreError("NoSuchBucket", "The specified bucket does not exist", resource=bucket)

    def _db_list_buckets(self) -> list[BucketInfo]:
        rows = self._sql.execute("SELECT name, created_us FROM buckets ORDER BY name")
        return [BucketInfo(name, _datetime(created)) for name, created in rows]

    def _db_head_bucket(self, bucket: str) -> BucketInfo:
        row = self._sql.execute("SELECT created_us FROM buckets WHERE name = ?", (bucket,)).fetchone()
        if row is None:
            raise StoreError("NoSuchBucket", "The specified bucket does not exist", resource=bucket)
        return BucketInfo(bucket, _datetime(row[0]))

    def _db_create_bucket(self, bucket: str) -> None:
        with self._transaction() as sql:
            if sql.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is not None:
                raise StoreError(
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                    resource=bucket,
                )
            sql.execute("INSERT INTO buckets (name, created_us) VALUES (?, ?)", (bucket, _now_us()))

    def _db_delete_bucket(self, bucket: str) -> list[str]:
        """Delete an empty bucket with its uploads and their parts, in one transaction: a part
        being uploaded meanwhile finds its upload gone. Returns the part files to delete."""
        with self._transaction() as sql:
            self._db_require_bucket(bucket)
            if sql.execute(
                "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?)"
                " OR EXISTS (SELECT 1 FROM versions WHERE bucket = ?)",
                (bucket, bucket),
            ).fetchone()[0]:
                raise StoreError("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=bucket)
            uploads = "SELECT upload_id FROM uploads WHERE bucket = ?"
            files = [f for (f,) in sql.execute(f"SELECT file FROM parts WHERE upload_id IN ({uploads})", (bucket,))]
            sql.execute(f"DELETE FROM parts WHERE upload_id IN ({uploads})", (bucket,))
            sql.execute("DELETE FROM uploads WHERE bucket = ?", (bucket,))
            sql.execute("DELETE FROM bucket_documents WHERE bucket = ?", (bucket,))
            sql.execute("DELETE FROM buckets WHERE name = ?", (bucket,))
        return files

    def _db_versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status (None: never enabled); NoSuchBucket."""
        row = self._sql.execute("SELECT versioning FROM buckets WHERE name = ?", (bucket,)).fetchone()
        if row is None:
            raise StoreError("NoSuchBucket", "The specified bucket does not exist", resource=bucket)
        return row[0]

    def _db_set_versioning(self, bucket: str, status: str) -> None:
        with self._transaction() as sql:
            self._db_versioning(bucket)
            sql.execute("UPDATE buckets SET versioning = ? WHERE name = ?", (status, bucket))

    def _db_current(self, bucket: str, key: str, versioned: bool) -> _ObjectRow | None:
        row = self._sql.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
        ).fetchone()
        return None if row is None else _ObjectRow(*row, versioned=versioned)

    def _db_newest_noncurrent(self, bucket: str, key: str) -> tuple[_ObjectRow, bool] | None:
        """The key's newest row of ``versions`` and whether it is a delete marker."""
        row = self._sql.execute(
            f"SELECT {_OBJECT_COLUMNS}, delete_marker FROM versions WHERE bucket = ? AND key = ?"
            " ORDER BY modified_us DESC LIMIT 1",
            (bucket, key),
        ).fetchone()
        return None if row is None else (_ObjectRow(*row[:-1], versioned=True), bool(row[-1]))

    def _db_find_version(self, bucket: str, key: str, column: str | None) -> tuple[_ObjectRow, bool, bool] | None:
        """The version whose ``version_id`` column is ``column``: its row, whether it is current, and
        whether it is a delete marker."""
        row = self._sql.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ? AND version_id IS ?",
            (bucket, key, column),
        ).fetchone()
        if row is not None:
            return _ObjectRow(*row, versioned=True), True, False
        row = self._sql.execute(
            f"SELECT {_OBJECT_COLUMNS}, delete_marker FROM versions WHERE bucket = ? AND key = ? AND version_id IS ?",
            (bucket, key, column),
        ).fetchone()
        return None if row is None else (_ObjectRow(*row[:-1], versioned=True), False, bool(row[-1]))

    def _db_lookup(self, bucket: str, key: str, version_id: str | None = None) -> _ObjectRow:
        """The current version (NoSuchKey, saying so when it is a delete marker), or ``version_id``'s
        (NoSuchVersion; MethodNotAllowed for a delete marker, as S3 answers a GET or HEAD of one)."""
        with self._transaction(write=False):
            return self._db_find(bucket, key, version_id)

    def _db_find(self, bucket: str, key: str, version_id: str | None) -> _ObjectRow:
        """_db_lookup within the caller's transaction."""
        column = None if version_id is None else _version_column(version_id)
        versioning = self._db_versioning(bucket)
        versioned = versioning is not None
        if version_id is None or not versioned:
            if column is not None:  # an id of a version a never-versioned bucket cannot have
                raise StoreError("InvalidArgument", "Invalid version id specified", resource=version_id)
            current = self._db_current(bucket, key, versioned)
            if current is not None:
                return current
            newest = self._db_newest_noncurrent(bucket, key) if versioned else None
            if newest is not None and newest[1]:
                raise StoreError(
                    "NoSuchKey",
                    "The specified key does not exist.",
                    resource=key,
                    delete_marker=True,
                    version_id=newest[0].reported_version,
                )
            raise StoreError("NoSuchKey", "The specified key does not exist.", resource=key)
        found = self._db_find_version(bucket, key, column)
        if found is None:
            raise _no_such_version(version_id)
        row, _, marker = found
        if marker:
            raise StoreError(
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                resource=key,
                delete_marker=True,
                version_id=version_id,
                last_modified=_datetime(row.modified_us),
            )
        return row

    def _db_stamp(self, bucket: str, key: str) -> int:
        """A modification time after every version of the key: a key's versions are ordered by it
        (two commits in one microsecond, or a clock stepping back, still order as committed)."""
        newest = self._sql.execute(
            "SELECT MAX(m) FROM (SELECT MAX(modified_us) AS m FROM objects WHERE bucket = ? AND key = ?"
            " UNION ALL SELECT MAX(modified_us) FROM versions WHERE bucket = ? AND key = ?)",
            (bucket, key, bucket, key),
        ).fetchone()[0]
        return _now_us() if newest is None else max(_now_us(), newest + 1)

    def _db_archive(self, bucket: str, key: str, versioning: str) -> tuple[list[str], list[ObjectInfo]]:
        """Before a new current version or delete marker of a versioned bucket: the current version
        becomes a noncurrent one, except a null version under Suspended, which the new null version
        replaces, as does any older null version or null delete marker. Returns the files to delete
        and the versions removed for good."""
        sql = self._sql
        obsolete: list[str] = []
        removed: list[ObjectInfo] = []
        current = self._db_current(bucket, key, True)
        if current is not None:
            sql.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            if versioning == VERSIONING_SUSPENDED and current.version_id is None:
                obsolete.append(current.file)
                removed.append(current.info(bucket))
            else:
                self._db_insert_version(bucket, current, False)
        if versioning == VERSIONING_SUSPENDED:
            nulls = sql.execute(
                f"SELECT {_OBJECT_COLUMNS}, delete_marker FROM versions"
                " WHERE bucket = ? AND key = ? AND version_id IS NULL",
                (bucket, key),
            ).fetchall()
            for *columns, marker in nulls:
                if not marker:
                    row = _ObjectRow(*columns, versioned=True)
                    obsolete.append(row.file)
                    removed.append(row.info(bucket))
            sql.execute("DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id IS NULL", (bucket, key))
        return obsolete, removed

    def _db_insert_version(self, bucket: str, row: _ObjectRow, marker: bool) -> None:
        self._sql.execute(
            f"INSERT INTO versions (bucket, {_OBJECT_COLUMNS}, delete_marker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bucket, *row.columns(), int(marker)),
        )

    def _db_promote(self, bucket: str, key: str) -> None:
        """After a current version was removed: the newest remaining version becomes the current one
        (unless it is a delete marker, which stays where delete markers are)."""
        if self._db_current(bucket, key, True) is not None:
            return
        newest = self._db_newest_noncurrent(bucket, key)
        if newest is None or newest[1]:
            return
        row = newest[0]
        self._sql.execute(
            "DELETE FROM versions WHERE bucket = ? AND key = ? AND modified_us = ?", (bucket, key, row.modified_us)
        )
        self._sql.execute(
            f"INSERT INTO objects (bucket, {_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bucket, *row.columns()),
        )

    def _db_commit_object(
        self, bucket: str, new: _ObjectRow, upload_id: str | None, condition: WriteCondition | None = None
    ) -> tuple[ObjectInfo, list[str]]:
        """Make an object visible, replacing any previous version; completing an upload also drops
        the upload and its parts in the same transaction (the object's files are some of the parts'
        files: _PartsChanged when one of them is no longer a part). Returns the files to delete afterwards.

        ``condition`` is checked in the same write transaction (BEGIN IMMEDIATE), so of two
        conditional writers only one can see the state its condition asks for.
        """
        obsolete: list[str] = []
        removed: list[ObjectInfo] = []
        with self._transaction() as sql:
            versioning = self._db_versioning(bucket)
            if condition is not None:
                current = self._db_current(bucket, new.key, versioning is not None)
                condition.check(None if current is None else current.info(bucket))
            if upload_id is not None:
                self._db_require_upload(bucket, new.key, upload_id)
                parts = [f for (f,) in sql.execute("SELECT file FROM parts WHERE upload_id = ?", (upload_id,))]
                used = set(_file_ids(new.file))
                if not used <= set(parts):
                    raise _PartsChanged()
                obsolete += [f for f in parts if f not in used]  # Parts uploaded but left out.
                sql.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
                sql.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            if versioning is None:
                old = self._db_current(bucket, new.key, False)
                if old is not None:
                    obsolete.append(old.file)
                    removed.append(old.info(bucket))
                # Stamped inside the transaction, so modification times follow commit order.
                row = dataclasses.replace(new, modified_us=_now_us(), version_id=None, versioned=False)
            else:
                stamp = self._db_stamp(bucket, new.key)
                archived, removed = self._db_archive(bucket, new.key, versioning)
                obsolete += archived
                version_id = _new_version_id(stamp) if versioning == VERSIONING_ENABLED else None
                row = dataclasses.replace(new, modified_us=stamp, version_id=version_id, versioned=True)
            sql.execute(
                f"INSERT OR REPLACE INTO objects (bucket, {_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bucket, *row.columns()),
            )
        return dataclasses.replace(row.info(bucket), replaced=tuple(removed)), obsolete

    def _db_set_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> None:
        """Replace an object's (or a version's) tags in its row: its files, ETag and modification time stay."""
        with self._transaction() as sql:
            row = self._db_find(bucket, key, version_id)
            for table in ("objects", "versions"):  # A version's modification time is unique among the key's.
                sql.execute(
                    f"UPDATE {table} SET attributes = ? WHERE bucket = ? AND key = ? AND modified_us = ?",
                    (_with_tags(row.attributes, tags), bucket, key, row.modified_us),
                )

    def _db_upload_tags(self, upload_id: str) -> dict[str, str]:
        """The tags an upload gives its object at Complete (none once the upload is gone)."""
        row = self._sql.execute("SELECT attributes FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
        return {} if row is None else _decode_tags(row[0])

    def _db_delete_object(self, bucket: str, key: str, version_id: str | None) -> tuple[DeleteResult, list[str]]:
        """S3's DeleteObject: on a versioned bucket a delete marker (Enabled: a new version; Suspended:
        the null one), or with ``version_id`` that version removed for good (the previous one becoming
        current). Returns what was done and the files to delete afterwards."""
        column = None if version_id is None else _version_column(version_id)
        if version_id is None:
            # Most deletes of a missing key come from the compressing store, which removes a stale sidecar
            # after every PUT of a one-frame object: a read finds there is nothing to do without taking
            # the write lock that every other writer (and worker) queues for.
            with self._transaction(write=False):
                if self._db_versioning(bucket) is None and self._db_current(bucket, key, False) is None:
                    return DeleteResult(removed=()), []
        with self._transaction() as sql:
            versioning = self._db_versioning(bucket)
            if versioning is None:
                if column is not None:
                    raise StoreError("InvalidArgument", "Invalid version id specified", resource=version_id)
                old = self._db_current(bucket, key, False)
                if old is None:
                    return DeleteResult(removed=()), []
                sql.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
                return DeleteResult(removed=(old.info(bucket),)), [old.file]
            if version_id is None:
                stamp = self._db_stamp(bucket, key)
                obsolete, removed = self._db_archive(bucket, key, versioning)
                marker_id = _new_version_id(stamp) if versioning == VERSIONING_ENABLED else None
                marker = _ObjectRow(key, "", 0, "", stamp, "{}", None, marker_id, versioned=True)
                self._db_insert_version(bucket, marker, True)
                return DeleteResult(marker.reported_version, True, removed=tuple(removed)), obsolete
            found = self._db_find_version(bucket, key, column)
            if found is None:
                return DeleteResult(version_id, removed=()), []
            row, current, marker = found
            table = "objects" if current else "versions"
            sql.execute(
                f"DELETE FROM {table} WHERE bucket = ? AND key = ? AND modified_us = ?", (bucket, key, row.modified_us)
            )
            self._db_promote(bucket, key)
            if marker:
                return DeleteResult(version_id, True, removed=()), []
            return DeleteResult(version_id, False, removed=(row.info(bucket),)), [row.file]

    def _db_list_objects(
        self, bucket: str, prefix: str, delimiter: str | None, start_after: str | None, max_keys: int
    ) -> ListPage:
        """S3 listing as a series of index range scans.

        Each rolled-up common prefix ends the current scan and starts the next one just past every
        key under it, so a prefix over a million keys costs one lookup, not a million rows.
        """
        with self._transaction(write=False):
            versioned = self._db_versioning(bucket) is not None  # listed objects carry their version ids
            if max_keys <= 0:
                return ListPage([], [], False, None)
            upper = _successor(prefix)
            # The lower bound: (value, inclusive). Keys at or below start_after never come back, nor
            # does a common prefix that start_after falls in (it was listed on an earlier page).
            lower: tuple[str, bool] | None = (prefix, True)
            if start_after is not None and start_after >= prefix:
                skipped = _rollup(start_after, prefix, delimiter) if start_after.startswith(prefix) else None
                lower = (start_after, False) if skipped is None else _after_prefix(skipped)
            objects: list[ObjectInfo] = []
            prefixes: list[str] = []
            last: str | None = None
            while lower is not None:
                limit = min(max_keys - len(objects) - len(prefixes) + 1, LIST_BATCH)
                seen = 0
                rolled_up = False
                with contextlib.closing(self._db_key_range(bucket, lower, upper, limit)) as rows:
                    for row in rows:
                        seen += 1
                        if len(objects) + len(prefixes) == max_keys:
                            return ListPage(objects, prefixes, True, last)
                        common = _rollup(row.key, prefix, delimiter)
                        if common is None:
                            objects.append(dataclasses.replace(row, versioned=versioned).info(bucket))
                            last = row.key
                            lower = (row.key, False)
                        else:
                            prefixes.append(common)
                            last = common
                            lower = _after_prefix(common)
                            rolled_up = True
                            break  # Jump past everything under it with a fresh range scan.
                if not rolled_up and seen < limit:
                    break  # The range ran out.
            return ListPage(objects, prefixes, False, None)

    def _db_key_range(
        self, bucket: str, lower: tuple[str, bool], upper: str | None, limit: int
    ) -> Generator[_ObjectRow, None, None]:
        """Rows in key order, fetched one by one: a scan cut short at a common prefix reads no further."""
        value, inclusive = lower
        sql = f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key {'>=' if inclusive else '>'} ?"
        args: list[Any] = [bucket, value]
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        cursor = self._sql.execute(sql, args)
        try:
            for row in cursor:
                yield _ObjectRow(*row)
        finally:
            cursor.close()

    def _db_list_versions(
        self,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        key_marker: str | None,
        version_marker: str | None,
        max_keys: int,
    ) -> VersionsPage:
        """ListObjectVersions as range scans of the current and the other versions merged in (key,
        newest first) order; a common prefix ends a scan and the next starts past it, as in listing."""
        with self._transaction(write=False):
            self._db_versioning(bucket)
            if max_keys <= 0:
                return VersionsPage([], [], False, None, None)
            upper = _successor(prefix)
            # The position: (key, inclusive, before): rows after ``key``, or of ``key`` itself when
            # inclusive, then only those older than ``before`` (a modification time) when given.
            position: tuple[str, bool, int | None] | None = (prefix, True, None)
            previous_key: str | None = None
            if key_marker is not None and key_marker >= prefix:
                skipped = _rollup(key_marker, prefix, delimiter) if key_marker.startswith(prefix) else None
                if skipped is not None:
                    after = _after_prefix(skipped)
                    position = None if after is None else (after[0], True, None)
                else:
                    position = (key_marker, False, None)
                    if version_marker is not None:
                        column = None if version_marker == NULL_VERSION else version_marker
                        found = self._db_find_version(bucket, key_marker, column)
                        if found is not None:
                            position = (key_marker, True, found[0].modified_us)
                            previous_key = key_marker
            versions: list[ObjectInfo] = []
            prefixes: list[str] = []
            last: tuple[str, str | None] | None = None
            while position is not None:
                limit = min(max_keys - len(versions) - len(prefixes) + 1, LIST_BATCH)
                rows = self._db_version_range(bucket, position, upper, limit)
                rolled_up = False
                for row, marker in rows:
                    if len(versions) + len(prefixes) == max_keys:
                        assert last is not None
                        return VersionsPage(versions, prefixes, True, last[0], last[1])
                    common = _rollup(row.key, prefix, delimiter)
                    if common is None:
                        row = dataclasses.replace(row, versioned=True)
                        info = row.info(bucket)
                        if marker:
                            info = dataclasses.replace(info, etag="", attributes=ObjectAttributes(), tag_count=0)
                        latest = row.key != previous_key
                        previous_key = row.key
                        versions.append(dataclasses.replace(info, is_latest=latest, delete_marker=marker))
                        last = (row.key, row.reported_version)
                        position = (row.key, True, row.modified_us)
                    else:
                        prefixes.append(common)
                        last = (common, None)
                        after = _after_prefix(common)
                        position = None if after is None else (after[0], True, None)
                        rolled_up = True
                        break
                if not rolled_up and len(rows) < limit:
                    break
            return VersionsPage(versions, prefixes, False, None, None)

    def _db_version_range(
        self, bucket: str, position: tuple[str, bool, int | None], upper: str | None, limit: int
    ) -> list[tuple[_ObjectRow, bool]]:
        """Up to ``limit`` versions from ``position`` on, in (key, newest first) order: each table is
        read in that order from its primary key, and only the two short runs are merged."""
        key, inclusive, before = position
        where = "bucket = ? AND key >= ?" + ("" if upper is None else " AND key < ?")
        where += " AND (key > ? OR (? AND (? IS NULL OR modified_us < ?)))"
        args: list[Any] = [bucket, key, *([] if upper is None else [upper]), key, int(inclusive), before, before]
        query = (
            f"SELECT * FROM (SELECT {_OBJECT_COLUMNS}, 0 FROM objects WHERE {where} ORDER BY key LIMIT ?)"
            f" UNION ALL SELECT * FROM (SELECT {_OBJECT_COLUMNS}, delete_marker FROM versions WHERE {where}"
            " ORDER BY key, modified_us DESC LIMIT ?) ORDER BY 1, 5 DESC LIMIT ?"
        )
        rows = self._sql.execute(query, [*args, limit, *args, limit, limit]).fetchall()
        return [(_ObjectRow(*row[:-1]), bool(row[-1])) for row in rows]

    def _db_create_upload(self, bucket: str, key: str, attributes: str) -> str:
        with self._transaction() as sql:
            self._db_require_bucket(bucket)
            now_ns = time.time_ns()
            # Time first, fixed width: upload ids of one key sort in initiation order. Hex is url-safe.
            upload_id = f"{now_ns:016x}{secrets.token_hex(12)}"
            sql.execute(
                "INSERT INTO uploads (upload_id, bucket, key, initiated_us, attributes) VALUES (?, ?, ?, ?, ?)",
                (upload_id, bucket, key, now_ns // 1000, attributes),
            )
        return upload_id

    def _db_require_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        row = self._sql.execute(
            "SELECT bucket, key, initiated_us, attributes FROM uploads WHERE upload_id = ?", (upload_id,)
        ).fetchone()
        if row is None or row[0] != bucket or row[1] != key:
            self._db_require_bucket(bucket)
            raise StoreError(
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been"
                " aborted or completed.",
                resource=upload_id,
            )
        return UploadInfo(bucket, key, upload_id, _datetime(row[2]), _decode_attributes(row[3]))

    def _db_upload_parts(
        self, bucket: str, key: str, upload_id: str
    ) -> tuple[UploadInfo, dict[int, tuple[PartInfo, str]]]:
        with self._transaction(write=False) as sql:
            upload = self._db_require_upload(bucket, key, upload_id)
            rows = sql.execute(
                "SELECT part_number, size, etag, modified_us, file FROM parts WHERE upload_id = ?", (upload_id,)
            )
            parts = {n: (PartInfo(n, size, etag, _datetime(us)), file) for n, size, etag, us, file in rows}
        return upload, parts

    def _db_commit_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, spooled: _Spooled
    ) -> tuple[PartInfo, list[str]]:
        with self._transaction() as sql:
            self._db_require_upload(bucket, key, upload_id)
            old = sql.execute(
                "SELECT file FROM parts WHERE upload_id = ? AND part_number = ?", (upload_id, part_number)
            ).fetchone()
            now = _now_us()
            sql.execute(
                "INSERT OR REPLACE INTO parts (upload_id, part_number, file, size, etag, modified_us)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (upload_id, part_number, spooled.file_id, spooled.size, spooled.etag, now),
            )
        return PartInfo(part_number, spooled.size, spooled.etag, _datetime(now)), [] if old is None else [old[0]]

    def _db_abort(self, bucket: str, key: str, upload_id: str) -> list[str]:
        with self._transaction() as sql:
            self._db_require_upload(bucket, key, upload_id)
            files = [f for (f,) in sql.execute("SELECT file FROM parts WHERE upload_id = ?", (upload_id,))]
            sql.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            sql.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        return files

    def _db_list_parts(self, bucket: str, key: str, upload_id: str, marker: int, max_parts: int) -> PartsPage:
        with self._transaction(write=False) as sql:
            upload = self._db_require_upload(bucket, key, upload_id)
            rows = sql.execute(
                "SELECT part_number, size, etag, modified_us FROM parts WHERE upload_id = ? AND part_number > ?"
                " ORDER BY part_number LIMIT ?",
                (upload_id, max(marker, 0), max(max_parts, 0) + 1),
            ).fetchall()
        parts = [PartInfo(n, size, etag, _datetime(us)) for n, size, etag, us in rows[: max(max_parts, 0)]]
        if parts and len(rows) > len(parts):
            return PartsPage(upload, parts, True, parts[-1].part_number)
        return PartsPage(upload, parts, False, None)  # As for objects, a page of none is not truncated.

    def _db_list_uploads(
        self, bucket: str, prefix: str, key_marker: str | None, upload_id_marker: str | None, max_uploads: int
    ) -> UploadsPage:
        """S3's markers: after ``key_marker`` alone, the next key; with ``upload_id_marker`` too, the
        same key's later uploads first. An upload id marker without a key marker is ignored."""
        sql = "SELECT upload_id, key, initiated_us, attributes FROM uploads WHERE bucket = ? AND key >= ?"
        args: list[Any] = [bucket, prefix]
        upper = _successor(prefix)
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        if key_marker is not None and upload_id_marker:
            sql += " AND (key, upload_id) > (?, ?)"
            args += [key_marker, upload_id_marker]
        elif key_marker is not None:
            sql += " AND key > ?"
            args.append(key_marker)
        sql += " ORDER BY key, upload_id LIMIT ?"
        args.append(max(max_uploads, 0) + 1)
        with self._transaction(write=False) as conn:
            self._db_require_bucket(bucket)
            rows = conn.execute(sql, args).fetchall()
        uploads = [
            UploadInfo(bucket, key, upload_id, _datetime(us), _decode_attributes(attributes))
            for upload_id, key, us, attributes in rows[: max(max_uploads, 0)]
        ]
        if len(rows) > len(uploads) and uploads:
            return UploadsPage(uploads, [], True, uploads[-1].key, uploads[-1].upload_id)
        return UploadsPage(uploads, [], False, None, None)

    def _db_get_documents(self, bucket: str, names: tuple[str, ...]) -> dict[str, bytes | None]:
        """One transaction for all of them: a consistent view, and one hop to this thread."""
        found: dict[str, bytes | None] = dict.fromkeys(names)
        with self._transaction(write=False) as sql:
            self._db_require_bucket(bucket)
            if names:
                marks = ", ".join("?" * len(names))
                query = f"SELECT name, document FROM bucket_documents WHERE bucket = ? AND name IN ({marks})"
                for name, document in sql.execute(query, (bucket, *names)):
                    found[name] = bytes(document)
        return found

    def _db_put_document(self, bucket: str, name: str, document: bytes) -> None:
        with self._transaction() as sql:
            self._db_require_bucket(bucket)
            sql.execute(
                "INSERT OR REPLACE INTO bucket_documents (bucket, name, document) VALUES (?, ?, ?)",
                (bucket, name, document),
            )

    def _db_delete_document(self, bucket: str, name: str) -> None:
        with self._transaction() as sql:
            self._db_require_bucket(bucket)
            sql.execute("DELETE FROM bucket_documents WHERE bucket = ? AND name = ?", (bucket, name))


def _after_prefix(common_prefix: str) -> tuple[str, bool] | None:
    """The lower bound just past every key under a common prefix (None: nothing can follow)."""
    following = _successor(common_prefix)
    return None if following is None else (following, True)
