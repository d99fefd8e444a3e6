"""One exception hierarchy for the whole engine.

Every error carries a short ``title`` (what went wrong), a ``message`` (what the user can do about it)
and the ``paths`` it concerns, so the CLI, the daemon and the GUI can all show it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable


class PoolDriveError(Exception):
    """Base class: every error the engine raises on purpose is one of these."""

    title = "PoolDrive error"
    exit_code = 1

    def __init__(self, message: str, *, title: str | None = None, paths: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title
        self.paths: tuple[str, ...] = tuple(paths)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        return {"type": type(self).__name__, "title": self.title, "message": self.message,
                "paths": list(self.paths)}


class ConfigError(PoolDriveError):
    title = "Configuration problem"
    exit_code = 3


class CatalogUnreadableError(ConfigError):
    title = "Catalog unreadable"


class CredentialsError(PoolDriveError):
    title = "Credentials problem"
    exit_code = 4


class KeyringUnavailableError(CredentialsError):
    title = "No keyring available"


class NodeError(PoolDriveError):
    """A problem talking to one node; ``node`` names it."""

    title = "Node problem"
    exit_code = 5

    def __init__(self, message: str, *, node: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.node = node


class PreconditionFailed(NodeError):
    """A conditional write or read found another version than the one named (says nothing about the node's
    health)."""


class NodeUnreachableError(NodeError):
    title = "Node unreachable"

    def __init__(self, message: str, *, node: str = "", sent: bool = True, **kw: object) -> None:
        super().__init__(message, node=node, **kw)
        self.sent = sent  # the request may have reached the node (False: no connection was ever made)


class NodeTimeoutError(NodeUnreachableError):
    """No answer within the request's timeout: the node may be frozen or overloaded, or only far away."""


class UntrustedCertificateError(NodeUnreachableError):
    title = "Certificate not trusted"


class AuthError(NodeError):
    title = "Wrong credentials"
    exit_code = 4  # as documented: credentials


def keys_refused(refused: dict[str, AuthError], shared_by: str | None) -> AuthError:
    """Every node asked refused the keys. For a share that means it was revoked or has expired, which the
    recipient cannot fix by checking keys; for the owner's pool it names the nodes."""
    first = next(iter(refused))
    if shared_by is not None:
        return AuthError(f"Every node refused this shared folder's key ({', '.join(refused)}): the share was revoked "
                         f"or has expired. Ask {shared_by or 'its owner'} for a new invitation.", node=first)
    more = f" ({', '.join(list(refused)[1:])} refused them too.)" if len(refused) > 1 else ""
    return AuthError(refused[first].message + more, node=first)


class NodeFullError(NodeError):
    title = "Node is full"


class BucketMissingError(NodeError):
    title = "Bucket missing"


class ObjectMissingError(NodeError):
    title = "Object missing on node"


class QuorumError(PoolDriveError):
    title = "Not enough copies written"
    exit_code = 6


class IntegrityError(PoolDriveError):
    title = "Checksum mismatch"
    exit_code = 7


class NoReplicaError(PoolDriveError):
    title = "File unavailable"
    exit_code = 6


class InvalidPathError(PoolDriveError):
    title = "Invalid file name"
    exit_code = 2


class NotFoundError(PoolDriveError):
    title = "Not found"
    exit_code = 2


class UsageError(PoolDriveError):
    """A command was given options that do not go together (said the way argparse says its own)."""

    title = "Wrong usage"
    exit_code = 2


class AlreadyExistsError(PoolDriveError):
    title = "Already exists"
    exit_code = 2


class NameClashError(AlreadyExistsError):
    """A file where the pool has a folder of that name, or a folder where it has (or had) a file."""

    title = "Name taken"


class LocalIOError(PoolDriveError):
    title = "Local file problem"
    exit_code = 8


class DevPoolError(PoolDriveError):
    title = "Dev pool problem"
    exit_code = 9


class MinioBinaryMissingError(DevPoolError):
    title = "MinIO server not built"


class RefusedError(PoolDriveError):
    """An operation that would endanger data and was refused."""

    title = "Refused"
    exit_code = 10


class InvitationError(PoolDriveError):
    title = "Invitation problem"
    exit_code = 11


class AgentNotRunning(PoolDriveError):
    title = "Sync agent not running"
    exit_code = 12


class AlreadyRunning(PoolDriveError):
    title = "Already running"
    exit_code = 13


class ChangedMeanwhileError(PoolDriveError):
    """Another device wrote the same file first: this write was not made (nothing was overwritten)."""

    title = "Changed on another device"
    exit_code = 10
