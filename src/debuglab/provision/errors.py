"""The provisioning errors: each names the host (or the inventory line) and what to do."""

from __future__ import annotations

from debuglab.core.errors import DebuglabError


class InventoryError(DebuglabError):
    """The inventory is malformed; the message names the file and line."""

    exit_code = 2


class HostError(DebuglabError):
    """One host could not be provisioned, collected or reset; the others are unaffected."""

    exit_code = 3

    def __init__(self, host: str, message: str):
        super().__init__(f"{host}: {message}")
        self.host = host
        self.reason = message


class UnreachableHost(HostError):
    """No TCP connection, or the SSH handshake failed."""


class HostKeyError(HostError):
    """The host key is unknown (and accepting new keys was not asked for) or has changed."""


class HostAuthError(HostError):
    """The key was refused."""


class HostCheckFailed(HostError):
    """The host lacks what the kit needs: Python 3.11, free disk, git, the pinned upstream."""

    exit_code = 2


class RemoteStepFailed(HostError):
    """A command on the host failed; the message carries its output."""


class ProvisionFailed(DebuglabError):
    """Some hosts failed (each is in the result table); the others are done."""

    exit_code = 1


class ClassroomError(DebuglabError):
    """The cloud refused (credentials, quota) or a server could not be booted."""

    exit_code = 3


class QuotaError(ClassroomError):
    """The project's quota refused a server."""


class CloudAuthError(ClassroomError):
    """Keystone refused the credentials."""
