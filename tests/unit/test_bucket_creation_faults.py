"""CreateBucket when a step after the store made the bucket fails: the bucket is not left half made."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.config import CredentialConfig, S4Config
from s4.server.app import create_app
from s4.server.auth.sigv4 import Credential, Credentials
from s4.server.limits import server_settings
from s4.server.runner import identities_of
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from tests.faults import Fault, FaultKind, FaultyStore

ADMIN = CredentialConfig(access_key_id="ADMINKEY0001", secret_access_key="adminsecret1", name="admin", policy="admin")
USER = CredentialConfig(access_key_id="USERKEY00001", secret_access_key="usersecret01", name="user", policy="readwrite")


def test_a_bucket_whose_owner_record_cannot_be_written_is_not_left_made(tmp_path):
    """The owner record's write fails after the store made the bucket: CreateBucket answers 500 and the
    bucket is gone again, so the creator's retry makes it, and owns it. Left made, it had no owner record
    and fell to the legacy owner (the first identity): the creator's retries got BucketAlreadyExists."""

    async def scenario() -> list[int]:
        inner = await FilesystemStore.open(tmp_path, durable=False)
        faulty = FaultyStore(inner)
        pool = CpuCodecPool(CodecRegistry.cpu_default())
        store = CompressingStore(faulty, pool, CodecDispatcher())
        config = S4Config(data_dir=tmp_path)
        keys = Credentials(Credential(k.access_key_id, k.secret_access_key) for k in (ADMIN, USER))
        app = create_app(store, keys, config, identities=identities_of([ADMIN, USER]))
        runner = web.AppRunner(app, access_log=None, **server_settings(config.limits))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]

            async def request(method: str, path: str) -> int:
                url = f"http://127.0.0.1:{port}{path}"
                signed = AWSRequest(method=method, url=url, data=b"")
                signed.headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"").hexdigest()
                SigV4Auth(BotoCredentials(USER.access_key_id, USER.secret_access_key), "s3", "us-east-1").add_auth(
                    signed
                )
                headers = dict(signed.headers.items())
                async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as answer:
                    await answer.read()
                    return answer.status

            faulty.arm(Fault(FaultKind.ERROR, 1, method="put_bucket_document"))
            statuses = [await request("PUT", "/users-bucket")]
            faulty.disarm()
            statuses.append(await request("HEAD", "/users-bucket"))
            statuses.append(await request("PUT", "/users-bucket"))
            statuses.append(await request("PUT", "/users-bucket/k"))
            return statuses
        finally:
            await runner.cleanup()
            await store.close()
            pool.close()

    assert asyncio.run(scenario()) == [500, 404, 200, 200]
