"""An upstream S3's own failure (5xx) is the gateway's 503 ServiceUnavailable, not the client's 500.

SeaweedFS answers 500 InternalError to every request while its filer is down (the cluster
drills restart it): clients must get what they back off and retry on, as when the upstream
cannot be reached at all, and ``/ready`` says why.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from s4.store.s3.errors import translate


def client_error(status: int, code: str | None, message: str = "") -> ClientError:
    error = {"Code": code, "Message": message} if code is not None else {}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalError"), (500, None), (502, None), (504, "GatewayTimeout")],
)
def test_upstream_server_errors_are_service_unavailable(status, code):
    error = translate(client_error(status, code, "We encountered an internal error"), "http://upstream:8333")
    assert error.code == "ServiceUnavailable"
    assert "http://upstream:8333" in error.message


def test_throttling_and_client_errors_keep_their_codes():
    assert translate(client_error(503, "SlowDown"), "http://u").code == "SlowDown"
    assert translate(client_error(404, "NoSuchKey"), "http://u").code == "NoSuchKey"
    assert translate(client_error(400, "InvalidPart"), "http://u").code == "InvalidPart"
