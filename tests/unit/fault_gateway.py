"""An in-process gateway over a FaultyStore, and a SigV4 client that sees what a real one would.

The app is served the way ``s4 serve`` serves it (an AppRunner with the production
settings on a loopback port), over a CompressingStore whose inner store is a
``FaultyStore`` around a FilesystemStore. Requests are signed by botocore and sent by
aiohttp's client on the same event loop, so a test can cancel one mid-flight (a client
that gives up) and then check that the server let go of everything it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yarl
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.config import S4Config
from s4.server.app import create_app
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.limits import server_settings
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from tests.faults import FaultyStore

ACCESS_KEY = "S4FAULTKEY000000001"
SECRET_KEY = "s4-fault-secret-key-for-tests"
BUCKET = "b"
SETTLE_SECONDS = 3.0
READ_TIMEOUT = 10.0


@dataclasses.dataclass
class Reply:
    """What a client got: a status (None if not even the head came), the bytes, and whether the body was cut."""

    status: int | None
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    cut: bool = False
    """The connection failed after the head: the body is all the client got before that."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.cut

    def xml(self, tag: str) -> list[str]:
        """The text of every ``tag`` element in an XML body (namespaces ignored)."""
        root = ET.fromstring(self.body)
        return [e.text or "" for e in root.iter() if e.tag.rsplit("}", 1)[-1] == tag]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class FaultGateway:
    """The gateway, its stores and a client; ``async with FaultGateway.start(...) as gw``."""

    def __init__(self, data_dir: Path, faulty: FaultyStore, store: CompressingStore, runner: web.AppRunner) -> None:
        self.data_dir = data_dir
        self.faulty = faulty
        self.store = store
        self.runner = runner
        self.port = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        data_dir: Path,
        policy: FramePolicy,
        inner_min_part_size: int | None = None,
        cancel_on_disconnect: bool = False,
    ) -> AsyncIterator[FaultGateway]:
        """The gateway as ``s4 serve`` runs it; ``cancel_on_disconnect`` adds aiohttp's handler
        cancellation (off in production), under which a client that leaves cancels its handler."""
        config = S4Config(data_dir=data_dir)
        filesystem = await FilesystemStore.open(data_dir, durable=False)
        faulty = FaultyStore(filesystem, min_part_size=inner_min_part_size)
        store = CompressingStore(faulty, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher(), policy)
        app = create_app(store, Credentials([Credential(ACCESS_KEY, SECRET_KEY)]), config)
        settings = server_settings(config.limits) | {"handler_cancellation": cancel_on_disconnect}
        # A short shutdown: a handler still running at the end is a failure already reported.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1, **settings)
        await runner.setup()
        gateway = cls(data_dir, faulty, store, runner)
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            gateway.port = runner.addresses[0][1]
            with contextlib.suppress(Exception):
                await filesystem.create_bucket(BUCKET)
            yield gateway
        finally:
            await runner.cleanup()
            await store.close()
            store.pool.close()

    # --- requests ------------------------------------------------------------------------------------

    def url(self, key: str | None = None, query: str = "", bucket: str = BUCKET) -> str:
        path = f"/{bucket}" + ("" if key is None else "/" + quote(key, safe="/-_.~"))
        return f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def signed(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        SigV4Auth(BotoCredentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        return dict(request.headers.items())

    async def request(
        self,
        method: str,
        key: str | None = None,
        query: str = "",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        bucket: str = BUCKET,
    ) -> Reply:
        """One signed request on a fresh keep-alive connection, read to its end or its failure.

        Keep-alive on purpose: a response shorter than its Content-Length on a connection
        the server keeps open would hang the client, which a closing connection would hide.
        """
        url = self.url(key, query, bucket)
        signed = self.signed(method, url, body, headers)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            try:
                response = await session.request(
                    method, yarl.URL(url, encoded=True), data=body, headers=signed, skip_auto_headers=["Content-Type"]
                )
            except TimeoutError as exc:  # before ClientConnectionError: aiohttp's read timeout is both
                raise AssertionError(f"no answer to {method} {url} within {READ_TIMEOUT} s") from exc
            except aiohttp.ClientConnectionError:
                return Reply(None, {}, b"", cut=True)
            received = bytearray()
            cut = False
            async with response:
                try:
                    async for chunk in response.content.iter_any():
                        received += chunk
                except TimeoutError as exc:  # before ClientConnectionError: aiohttp's read timeout is both
                    raise AssertionError(f"the response stalled after {len(received)} bytes") from exc
                except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                    cut = True
                length = response.content_length
                if not cut and length is not None and len(received) != length and method != "HEAD":
                    raise AssertionError(f"{len(received)} bytes of a {length}-byte body and no error")
                return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, bytes(received), cut)

    # --- conveniences --------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> Reply:
        return await self.request("PUT", key, body=data)

    async def get(self, key: str, byte_range: tuple[int, int] | None = None) -> Reply:
        headers = {} if byte_range is None else {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"}
        return await self.request("GET", key, headers=headers)

    async def create_upload(self, key: str) -> str:
        reply = await self.request("POST", key, "uploads")
        assert reply.status == 200, reply
        return reply.xml("UploadId")[0]

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Reply:
        return await self.request("PUT", key, f"partNumber={number}&uploadId={upload_id}", data)

    async def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> Reply:
        items = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
        document = f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()
        return await self.request("POST", key, f"uploadId={upload_id}", document)

    async def list_keys(self) -> dict[str, int]:
        """Key to size, as ListObjectsV2 shows them to a client."""
        reply = await self.request("GET", query="list-type=2")
        assert reply.status == 200, reply
        return dict(zip(reply.xml("Key"), map(int, reply.xml("Size")), strict=True))

    async def list_uploads(self) -> list[str]:
        reply = await self.request("GET", query="uploads")
        assert reply.status == 200, reply
        return reply.xml("UploadId")

    async def inner_keys(self) -> list[str]:
        """Every key the inner store holds, reserved names included, bypassing the faults."""
        page = await self.faulty.inner.list_objects(BUCKET, max_keys=100_000)
        assert not page.is_truncated
        return [o.key for o in page.objects]

    async def inner_uploads(self) -> list[str]:
        """The inner store's own multipart uploads (the compressing store's Complete makes them)."""
        page = await self.faulty.inner.list_multipart_uploads(BUCKET)
        return [u.upload_id for u in page.uploads]

    def temp_files(self) -> list[str]:
        tmp = self.data_dir / "tmp"
        return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def etag_of(reply: Reply) -> str:
    return reply.headers.get("etag", "").strip('"')


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


_TASK_NAME = re.compile(r"<Task [^>]*coro=<([^>]*?) ")


async def settled(baseline_tasks: set[asyncio.Task], baseline_fds: int) -> tuple[list[str], int]:
    """Wait for the server to let go of what a request held: tasks left over and fds over the baseline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        current = asyncio.current_task()
        extra = [t for t in asyncio.all_tasks() if t not in baseline_tasks and t is not current and not t.done()]
        fds = open_fds() - baseline_fds
        if (not extra and fds <= 0) or loop.time() > deadline:
            return [_describe(t) for t in extra], fds
        await asyncio.sleep(0.01)


def _describe(task: asyncio.Task) -> str:
    match = _TASK_NAME.search(repr(task))
    return match.group(1) if match else repr(task)
