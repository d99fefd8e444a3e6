"""Invitations: everything a recipient needs to reach a shared folder, as one copy-paste string.

An invitation carries the node endpoints, the scoped keys, the folder and the mode, never the owner's own
keys. Sealed with a passphrase (scrypt, then AES-256-GCM), it is useless to whoever intercepts it without
the passphrase, which the sender tells the recipient another way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from sync_agent.errors import PoolDriveError

PREFIX = "pooldrive-invite:"
SEALED_PREFIX = "pooldrive-invite-sealed:"


class InvitationError(PoolDriveError):
    title = "Invitation problem"
    exit_code = 11


@dataclass(frozen=True)
class InvitedNode:
    name: str
    endpoint: str
    secure: bool = False
    weight: float = 1.0
    zone: str = ""


@dataclass(frozen=True)
class Invitation:
    share_id: str
    bucket: str
    folder: str
    mode: str  # ro | rw
    replicas: int
    access_key: str
    secret_key: str
    nodes: tuple[InvitedNode, ...] = field(default_factory=tuple)
    label: str = ""
    shared_by: str = ""
    expires_at: float = 0.0

    def __repr__(self) -> str:
        return f"Invitation({self.share_id}, {self.folder!r}, {self.mode}, secret='***')"

    def to_json(self) -> str:
        data = asdict(self)
        data["v"] = 1
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Invitation:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.pop("v", None) != 1:
                raise InvitationError("This invitation was made by a newer PoolDrive; upgrade to accept it.")
            data["nodes"] = tuple(InvitedNode(**n) for n in data["nodes"])
            return cls(**data)
        except (ValueError, TypeError, KeyError) as e:
            raise InvitationError(f"The invitation is damaged or incomplete (was it copied completely?): {e}.") from e


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(passphrase: str, salt: bytes) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)


def encode(inv: Invitation, passphrase: str | None = None) -> str:
    raw = inv.to_json().encode()
    if not passphrase:
        return PREFIX + _b64(raw)
    from Crypto.Cipher import AES  # pycryptodome, which minio already depends on

    salt, nonce = os.urandom(16), os.urandom(12)
    cipher = AES.new(_key(passphrase, salt), AES.MODE_GCM, nonce=nonce)
    ct, tag = cipher.encrypt_and_digest(raw)
    return SEALED_PREFIX + _b64(salt + nonce + tag + ct)


def is_sealed(text: str) -> bool:
    return text.strip().startswith(SEALED_PREFIX)


def decode(text: str, passphrase: str | None = None) -> Invitation:
    text = text.strip()
    if text.startswith(PREFIX):
        try:
            return Invitation.from_json(_unb64(text[len(PREFIX):]).decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise InvitationError("The invitation is damaged (was it copied completely?).") from e
    if not text.startswith(SEALED_PREFIX):
        raise InvitationError("This is not a PoolDrive invitation: it should start with 'pooldrive-invite'.")
    if not passphrase:
        raise InvitationError("This invitation is sealed with a passphrase; ask the sender for it.")
    from Crypto.Cipher import AES

    try:
        blob = _unb64(text[len(SEALED_PREFIX):])
    except ValueError as e:
        raise InvitationError("The invitation is damaged (was it copied completely?).") from e
    salt, nonce, tag, ct = blob[:16], blob[16:28], blob[28:44], blob[44:]
    try:
        raw = AES.new(_key(passphrase, salt), AES.MODE_GCM, nonce=nonce).decrypt_and_verify(ct, tag)
    except ValueError as e:
        raise InvitationError("Wrong passphrase, or the invitation was changed on the way.") from e
    return Invitation.from_json(raw.decode())
