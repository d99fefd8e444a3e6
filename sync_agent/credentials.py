"""Node credentials: the OS keyring for real pools, a 0600 file for throwaway dev pools.

There is deliberately no plain-text fallback: when no keyring backend works, we say what to install.
"""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from sync_agent import paths
from sync_agent.config import PoolConfig
from sync_agent.errors import CredentialsError, KeyringUnavailableError

log = logging.getLogger(__name__)

SERVICE = "pooldrive"

KEYRING_HELP = (
    "PoolDrive keeps node secrets in the system keyring and found none that works here. On a Linux "
    "desktop install and unlock GNOME Keyring or KWallet (Debian/Ubuntu: 'sudo apt install gnome-keyring'); "
    "on a headless machine run PoolDrive inside a session with a Secret Service (for example "
    "'dbus-run-session' with 'gnome-keyring-daemon --unlock'). PoolDrive never stores secrets in plain text."
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never leak the secret into logs or tracebacks
        return f"Credentials(access_key={self.access_key!r}, secret_key='***')"


def _keyring():  # imported lazily: importing keyring probes D-Bus, which costs time
    import keyring
    import keyring.errors

    return keyring, keyring.errors


def keyring_available() -> bool:
    """True when a keyring backend that can really store secrets is active."""
    keyring, _ = _keyring()
    backend = keyring.get_keyring()
    backends = getattr(backend, "backends", None)  # the chainer: usable if it chains anything
    candidates = backends if backends is not None else [backend]
    return any(type(b).__module__ not in ("keyring.backends.fail", "keyring.backends.null")
               for b in candidates)


def _username(pool: str, node: str) -> str:
    return f"{pool}/{node}"


def _ensure_keyring():
    keyring, errors = _keyring()
    if not keyring_available():
        raise KeyringUnavailableError(KEYRING_HELP)
    return keyring, errors


def store_in_keyring(pool: str, node: str, creds: Credentials) -> None:
    keyring, errors = _ensure_keyring()
    try:
        keyring.set_password(SERVICE, _username(pool, node),
                             json.dumps({"access_key": creds.access_key, "secret_key": creds.secret_key}))
    except errors.KeyringError as e:
        raise KeyringUnavailableError(f"The keyring refused to store the secret ({e}). {KEYRING_HELP}") from e


def delete_from_keyring(pool: str, node: str) -> None:
    keyring, errors = _ensure_keyring()
    try:
        keyring.delete_password(SERVICE, _username(pool, node))
    except errors.PasswordDeleteError:
        pass
    except errors.KeyringError as e:
        raise KeyringUnavailableError(f"The keyring refused to delete the secret ({e}).") from e


def _from_keyring(pool: str, node: str) -> Credentials:
    keyring, errors = _ensure_keyring()
    try:
        raw = keyring.get_password(SERVICE, _username(pool, node))
    except errors.KeyringError as e:
        raise KeyringUnavailableError(f"The keyring could not be read ({e}). {KEYRING_HELP}") from e
    if raw is None:
        raise CredentialsError(f"No credentials for node '{node}' of pool '{pool}' are in the keyring. "
                               f"Set them with 'pooldrive pool set-credentials --pool {pool} {node}'.")
    data = json.loads(raw)
    return Credentials(data["access_key"], data["secret_key"])


def write_private_file(path: Path, data: dict[str, object]) -> None:
    """Write JSON to ``path`` with mode 0600 from the start (no window where others can read it)."""
    paths.write_private(path, json.dumps(data, indent=2))


def _from_file(path: Path, node: str) -> Credentials:
    try:
        st = path.stat()
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CredentialsError(f"The dev pool's credentials file {path} is missing. Start the dev pool "
                               "again with 'pooldrive devpool up'.", paths=[str(path)]) from e
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(f"{path} is readable by other users; run 'chmod 600 {path}'.",
                               paths=[str(path)])
    entry = data.get("nodes", {}).get(node, data.get("default"))
    if not entry:
        raise CredentialsError(f"{path} has no credentials for node '{node}'.", paths=[str(path)])
    return Credentials(entry["access_key"], entry["secret_key"])


def credentials_for(cfg: PoolConfig, node: str) -> Credentials:
    if cfg.credentials == "file":
        return _from_file(Path(cfg.credentials_file).expanduser(), node)
    return _from_keyring(cfg.name, node)
