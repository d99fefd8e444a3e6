"""Folder sharing on what MinIO enforces itself: scoped service accounts, invitations, file links."""
