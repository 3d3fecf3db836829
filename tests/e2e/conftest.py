import itertools

import pytest

from tests.e2e.gateway import start_gateway

_names = itertools.count()


@pytest.fixture(scope="module", params=["http", "https", "s3-http"])
def gateway(request, tmp_path_factory):
    """The same scenarios over the embedded store (HTTP and HTTPS) and over a real SeaweedFS upstream."""
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    upstream = None
    extra_env = None
    if request.param.startswith("s3"):
        from tests.seaweed import SeaweedUnavailable, start_seaweed

        try:
            upstream = start_seaweed(tmp / "seaweed")
        except SeaweedUnavailable as exc:
            pytest.skip(f"SeaweedFS cannot run here: {exc}")
        extra_env = upstream.env()
    gw = start_gateway(tmp / "gateway", tls=request.param == "https", extra_env=extra_env)
    gw.upstream = upstream
    yield gw
    gw.stop()
    if upstream is not None:
        upstream.stop()


@pytest.fixture
def bucket(gateway):
    """A fresh bucket per test, so tests do not see each other's objects."""
    name = f"bucket-{next(_names)}"
    gateway.client().create_bucket(Bucket=name)
    return name
