"""The gateway side of access control: identities from the config file, and each operation's S3 action."""

from __future__ import annotations

import pytest

from s4.config import CredentialConfig
from s4.server.access import AccessRequest, Effect, evaluate
from s4.server.access.actions import OPERATION_ACTIONS, action_of, copy_source
from s4.server.access.identities import Identities, IdentityError
from s4.server.routes import OPERATION_NAMES


def _pair(key: str, name: str | None = None, policy: object = "readwrite") -> CredentialConfig:
    return CredentialConfig(access_key_id=key, secret_access_key="a-secret-1", name=name, policy=policy)


def test_identities_from_config():
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"}],
    }
    identities = Identities.from_config(
        [
            _pair("ALICEKEY", "alice"),
            _pair("ALICEKEY2", "alice"),
            _pair("READER", policy="readonly"),
            _pair("SCOPED", "scoped", document),
            _pair("ROOTKEY", "root", "admin"),
        ]
    )
    alice, rotated = identities.of("ALICEKEY"), identities.of("ALICEKEY2")
    assert alice is not None and rotated is not None and alice.name == rotated.name == "alice"
    assert alice.principal == "arn:aws:iam:::user/alice" and not alice.is_admin
    reader = identities.of("READER")
    assert reader is not None and (reader.name, reader.policy_name) == ("READER", "readonly")
    scoped = identities.of("SCOPED")
    assert scoped is not None and scoped.policy_name is None
    allowed = AccessRequest("s3:GetObject", "logs", "a.txt", scoped.principal)
    refused = AccessRequest("s3:GetObject", "other", "a.txt", scoped.principal)
    assert (evaluate(scoped.policy, allowed), evaluate(scoped.policy, refused)) == (Effect.ALLOW, Effect.NONE)
    assert identities.of("ROOTKEY").is_admin
    assert identities.of("") is None  # anonymous
    assert identities.of("UNKNOWN") is None
    assert identities.legacy_owner == "alice"  # the first configured identity owns buckets without a record


def test_a_policy_that_does_not_parse_is_refused_with_its_reason():
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}
    with pytest.raises(IdentityError, match="Maybe"):
        Identities.from_config([_pair("KEY", "k", bad)])


def test_without_configuration_every_key_is_admin():
    identities = Identities(None)
    anyone = identities.of("SOMEKEY")
    assert anyone is not None and anyone.is_admin and anyone.name == "SOMEKEY"
    assert identities.legacy_owner == "admin"


def test_replace_swaps_the_whole_set():
    identities = Identities.from_config([_pair("OLDKEY", "old")])
    identities.replace(Identities.parse([_pair("NEWKEY", "new")]))
    assert identities.of("OLDKEY") is None and identities.of("NEWKEY").name == "new"


def test_every_routed_operation_has_an_action():
    """A new operation must say which action it asks for (or be a browser's preflight, or per key)."""
    unmapped = {name for name in OPERATION_NAMES.values() if name not in OPERATION_ACTIONS}
    assert unmapped <= {"PreflightRequest", "DeleteObjects"}


def test_versions_and_copy_sources():
    assert action_of("GetObject", {}) == "s3:GetObject"
    assert action_of("GetObject", {"versionId": "v1"}) == "s3:GetObjectVersion"
    assert action_of("HeadObject", {"versionId": "v1"}) == "s3:GetObjectVersion"
    assert action_of("DeleteObject", {"versionId": "v1"}) == "s3:DeleteObjectVersion"
    assert action_of("ListObjectVersions", {}) == "s3:ListBucketVersions"
    assert action_of("DeleteBucketCors", {}) == "s3:PutBucketCORS"
    assert action_of("PreflightRequest", {}) is None
    assert copy_source({"x-amz-copy-source": "/src/a%20b.txt"}) == ("src", "a b.txt", "s3:GetObject")
    assert copy_source({"x-amz-copy-source": "src/k?versionId=v2"}) == ("src", "k", "s3:GetObjectVersion")
    assert copy_source({"x-amz-copy-source": "justabucket"}) is None
    assert copy_source({}) is None
