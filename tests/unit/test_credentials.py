from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from sync_agent import credentials
from sync_agent.config import PoolConfig
from sync_agent.credentials import Credentials
from sync_agent.errors import CredentialsError, KeyringUnavailableError


def test_keyring_round_trip() -> None:
    credentials.store_in_keyring("home", "nas", Credentials("AK", "SK"))
    cfg = PoolConfig(name="home", bucket="pooldrive-home")
    assert credentials.credentials_for(cfg, "nas") == Credentials("AK", "SK")
    credentials.delete_from_keyring("home", "nas")
    with pytest.raises(CredentialsError, match="set-credentials"):
        credentials.credentials_for(cfg, "nas")


def test_no_keyring_is_an_explained_error_never_a_plaintext_fallback(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not credentials.keyring_available()
        with pytest.raises(KeyringUnavailableError) as e:
            credentials.store_in_keyring("home", "nas", Credentials("AK", "SK"))
        assert "gnome-keyring" in e.value.message and "plain text" in e.value.message
    finally:
        keyring.set_keyring(previous)
    assert not any("SK" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_dev_credentials_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    credentials.write_private_file(path, {"default": {"access_key": "a", "secret_key": "s"}})
    assert (path.stat().st_mode & 0o777) == 0o600
    cfg = PoolConfig(name="dev", bucket="pooldrive", credentials="file", credentials_file=str(path))
    assert credentials.credentials_for(cfg, "node1").secret_key == "s"
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        credentials.credentials_for(cfg, "node1")


def test_secret_never_in_repr() -> None:
    assert "SK" not in repr(Credentials("AK", "SK"))
