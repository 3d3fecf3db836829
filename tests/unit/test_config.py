import json
import stat

import pytest

from s4.config import ConfigError, ensure_credentials, load_config


def test_precedence_defaults_yaml_env_flags(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text("port: 9000\nhost: 0.0.0.0\ndomain: S4.Example.\n")
    assert load_config(None, env={}).port == 8014
    config = load_config(path, env={"S4_PORT": "9100"}, overrides={"host": "127.0.0.2", "port": None})
    assert (config.port, config.host, config.domain) == (9100, "127.0.0.2", "s4.example")
    assert load_config(path, env={"S4_PORT": "9100"}, overrides={"port": 9200}).port == 9200


def test_bad_settings_fail_with_the_field_name(tmp_path):
    with pytest.raises(ConfigError, match="port"):
        load_config(None, env={"S4_PORT": "not-a-port"})
    path = tmp_path / "bad.yaml"
    path.write_text("prot: 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="tls"):
        load_config(None, env={}, overrides={"tls_cert": tmp_path / "c.pem"})
    with pytest.raises(ConfigError, match="S4_SECRET_ACCESS_KEY"):
        load_config(None, env={"S4_ACCESS_KEY_ID": "AKID"})


def test_credentials_from_file_and_environment(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text("credentials:\n  - access_key_id: FILEKEY\n    secret_access_key: file-secret-1\n")
    config = load_config(path, env={"S4_ACCESS_KEY_ID": "ENVKEY", "S4_SECRET_ACCESS_KEY": "env-secret-1"})
    pairs, generated = ensure_credentials(config)
    assert [p.access_key_id for p in pairs] == ["FILEKEY", "ENVKEY"] and not generated


def test_generated_credentials_are_private_and_stable(tmp_path):
    config = load_config(None, env={}, overrides={"data_dir": tmp_path / "data"})
    (first,), generated = ensure_credentials(config)
    assert generated
    saved = tmp_path / "data" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["secret_access_key"] == first.secret_access_key
    (again,), generated_again = ensure_credentials(config)
    assert again == first and not generated_again


def test_identities_name_and_policy(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text(
        "credentials:\n"
        "  - {access_key_id: ALICEKEY, secret_access_key: alice-secret, name: alice}\n"
        "  - {access_key_id: READERKEY, secret_access_key: reader-secret, policy: readonly}\n"
        "  - access_key_id: SCOPEDKEY\n"
        "    secret_access_key: scoped-secret\n"
        "    name: scoped\n"
        "    policy:\n"
        "      Version: '2012-10-17'\n"
        "      Statement: [{Effect: Allow, Action: 's3:GetObject', Resource: 'arn:aws:s3:::logs/*'}]\n"
    )
    config = load_config(path, env={"S4_ACCESS_KEY_ID": "ENVKEY", "S4_SECRET_ACCESS_KEY": "env-secret-1"})
    pairs, _ = ensure_credentials(config)
    assert [(p.identity, p.policy if isinstance(p.policy, str) else "document") for p in pairs] == [
        ("alice", "readwrite"),  # the default policy
        ("READERKEY", "readonly"),  # the name defaults to the key id
        ("scoped", "document"),
        ("admin", "admin"),  # the environment's pair
    ]


def test_identity_policy_must_be_canned_or_a_document(tmp_path):
    path = tmp_path / "s4.yaml"
    path.write_text("credentials:\n  - {access_key_id: AKEY, secret_access_key: a-secret-1, policy: superuser}\n")
    with pytest.raises(ConfigError, match="policy"):
        load_config(path, env={})
    path.write_text("credentials:\n  - {access_key_id: AKEY, secret_access_key: a-secret-1, policy: {Version: x}}\n")
    with pytest.raises(ConfigError, match="Statement"):
        load_config(path, env={})
    path.write_text("credentials:\n  - {access_key_id: AKEY, secret_access_key: a-secret-1, name: 'no spaces'}\n")
    with pytest.raises(ConfigError, match="name"):
        load_config(path, env={})


def test_generated_pair_is_admin(tmp_path):
    config = load_config(None, env={}, overrides={"data_dir": tmp_path / "data"})
    (first,), _ = ensure_credentials(config)
    (again,), _ = ensure_credentials(config)
    assert (first.identity, first.policy) == (again.identity, again.policy) == ("admin", "admin")
    assert set(json.loads((tmp_path / "data" / "credentials.json").read_text())) == {
        "access_key_id",
        "secret_access_key",
    }
