"""Invitations: everything a recipient needs to reach a shared folder, as one copy-paste string.

An invitation carries the node endpoints, the scoped keys, the folder and the mode, never the owner's own
keys. Sealed with a passphrase (scrypt, then AES-256-GCM), it is useless to whoever intercepts it without
the passphrase, which the sender tells the recipient another way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field

from sync_agent.errors import InvitationError

log = logging.getLogger(__name__)

NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # as a pool config allows (it becomes part of file names)
PREFIX = "pooldrive-invite:"
SEALED_PREFIX = "pooldrive-invite-sealed:"  # scrypt N=2^15 (read, no longer written)
SEALED2_PREFIX = "pooldrive-invite-sealed2:"  # scrypt N=2^17
MIN_PASSPHRASE = 10


@dataclass(frozen=True)
class InvitedNode:
    name: str
    endpoint: str
    secure: bool = False
    weight: float = 1.0
    zone: str = ""
    cert_sha256: str = ""  # the node's pinned certificate, as the owner trusts it
    ca_pem: str = ""  # the private CA the owner trusts for the node (its certificate, never a key)


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
    history: bool = True  # the recipient sees earlier versions too (invitations from before this field did)

    def __repr__(self) -> str:
        return f"Invitation({self.share_id}, {self.folder!r}, {self.mode}, secret='***')"

    def to_json(self) -> str:
        data = asdict(self)
        data["v"] = 1
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Invitation:
        """Parse and validate field by field (an invitation is untrusted input); never prints the key."""
        try:
            data = json.loads(text)
        except ValueError:
            raise InvitationError("The invitation is damaged (was it copied completely?).") from None
        if not isinstance(data, dict):
            raise InvitationError("The invitation is damaged: it holds no invitation fields.")
        if data.get("v") != 1:
            raise InvitationError("This invitation was made by a newer PoolDrive; upgrade to accept it.")

        def text_field(name: str, *, required: bool = True, limit: int = 1024) -> str:
            value = data.get(name, "" if not required else None)
            if not isinstance(value, str) or (required and not value) or len(value) > limit:
                raise InvitationError(f"The invitation is damaged: its '{name}' is missing or not valid text.")
            return value

        def number(name: str, default: float, lo: float, hi: float) -> float:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise InvitationError(f"The invitation is damaged: its '{name}' is not a valid number.")
            return value

        nodes_raw = data.get("nodes")
        if not isinstance(nodes_raw, list) or not nodes_raw or len(nodes_raw) > 64:
            raise InvitationError("The invitation is damaged: it names no nodes.")
        nodes = []
        for n in nodes_raw:
            if not isinstance(n, dict) or not isinstance(n.get("name"), str) or not isinstance(n.get("endpoint"), str) \
                    or not isinstance(n.get("secure", False), bool) or not n["name"] or not n["endpoint"]:
                raise InvitationError("The invitation is damaged: a node entry is not valid.")
            if not NODE_NAME.match(n["name"]) or "/" in n["endpoint"] or "\\" in n["endpoint"]:
                raise InvitationError("The invitation is damaged: a node's name or address is not valid.")
            weight = n.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1e6:
                raise InvitationError("The invitation is damaged: a node weight is not valid.")
            zone = n.get("zone", "")
            if not isinstance(zone, str):
                raise InvitationError("The invitation is damaged: a node zone is not valid.")
            cert_sha256, ca_pem = n.get("cert_sha256", ""), n.get("ca_pem", "")
            if not isinstance(cert_sha256, str) or not re.fullmatch(r"(?:[0-9a-f]{64})?", cert_sha256):
                raise InvitationError("The invitation is damaged: a node's certificate fingerprint is not valid.")
            if not isinstance(ca_pem, str) or len(ca_pem) > 20000 or (
                    ca_pem and not ca_pem.startswith("-----BEGIN CERTIFICATE-----")) or "PRIVATE KEY" in ca_pem:
                raise InvitationError("The invitation is damaged: a node's CA certificate is not valid.")
            nodes.append(InvitedNode(n["name"][:64], n["endpoint"][:256], n.get("secure", False), float(weight),
                                     zone[:64], cert_sha256, ca_pem))
        history = data.get("history", True)
        if not isinstance(history, bool):
            raise InvitationError("The invitation is damaged: its history setting is not valid.")
        mode = text_field("mode")
        if mode not in ("ro", "rw"):
            raise InvitationError("The invitation is damaged: its access mode is neither read-only nor read-write.")
        return cls(share_id=text_field("share_id", limit=128), bucket=text_field("bucket", limit=63),
                   folder=text_field("folder"), mode=mode, replicas=int(number("replicas", 2, 1, 16)),
                   access_key=text_field("access_key", limit=256), secret_key=text_field("secret_key", limit=256),
                   nodes=tuple(nodes), label=text_field("label", required=False),
                   shared_by=text_field("shared_by", required=False),
                   expires_at=float(number("expires_at", 0.0, 0, 1e11)), history=history)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(passphrase: str, salt: bytes, n: int = 2**17) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)


def encode(inv: Invitation, passphrase: str | None = None) -> str:
    raw = inv.to_json().encode()
    if not passphrase:
        return PREFIX + _b64(raw)
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvitationError(f"A passphrase that seals an invitation needs at least {MIN_PASSPHRASE} characters "
                              "(it guards a key to your folder).")
    from Crypto.Cipher import AES  # pycryptodome, which minio already depends on

    salt, nonce = os.urandom(16), os.urandom(12)
    cipher = AES.new(_key(passphrase, salt), AES.MODE_GCM, nonce=nonce)
    ct, tag = cipher.encrypt_and_digest(raw)
    return SEALED2_PREFIX + _b64(salt + nonce + tag + ct)


def looks_like_invitation(text: str) -> bool:
    return text.strip().startswith(PREFIX) or is_sealed(text)


def is_sealed(text: str) -> bool:
    return text.strip().startswith((SEALED_PREFIX, SEALED2_PREFIX))


def decode(text: str, passphrase: str | None = None) -> Invitation:
    text = text.strip()
    if text.startswith(PREFIX):
        try:
            return Invitation.from_json(_unb64(text[len(PREFIX):]).decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise InvitationError("The invitation is damaged (was it copied completely?).") from e
    if not is_sealed(text):
        raise InvitationError("This is not a PoolDrive invitation: it should start with 'pooldrive-invite'.")
    if not passphrase:
        raise InvitationError("This invitation is sealed with a passphrase; ask the sender for it.")
    from Crypto.Cipher import AES

    prefix, n = (SEALED2_PREFIX, 2**17) if text.startswith(SEALED2_PREFIX) else (SEALED_PREFIX, 2**15)
    try:
        blob = _unb64(text[len(prefix):])
    except ValueError as e:
        raise InvitationError("The invitation is damaged (was it copied completely?).") from e
    salt, nonce, tag, ct = blob[:16], blob[16:28], blob[28:44], blob[44:]
    try:
        raw = AES.new(_key(passphrase, salt, n), AES.MODE_GCM, nonce=nonce).decrypt_and_verify(ct, tag)
    except ValueError as e:
        raise InvitationError("Wrong passphrase, or the invitation was changed on the way.") from e
    return Invitation.from_json(raw.decode())
