"""Typed errors of this package; the CLI turns each into one clear message and its exit code."""

from __future__ import annotations

from debuglab.core.errors import DebuglabError


class UpstreamError(DebuglabError):
    """An upstream sdist could not be had, or its hash does not match the lock."""

    exit_code = 3


class WorkspaceError(DebuglabError):
    """The lab workspace is missing, foreign or cannot be built."""


class InjectError(DebuglabError):
    """A patch does not apply, or the checkout is not the one the bug is for."""


class StudentWorkError(InjectError):
    """The checkout holds uncommitted student work and --force was not given."""


class TestTargetError(DebuglabError):
    """A target that names no test of the checkout."""
