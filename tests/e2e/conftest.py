import itertools

import pytest

from tests.e2e.gateway import start_gateway

_names = itertools.count()


@pytest.fixture(scope="module", params=["http", "https"])
def gateway(request, tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp(f"gw-{request.param}"), tls=request.param == "https")
    yield gw
    gw.stop()


@pytest.fixture
def bucket(gateway):
    """A fresh bucket per test, so tests do not see each other's objects."""
    name = f"bucket-{next(_names)}"
    gateway.client().create_bucket(Bucket=name)
    return name
