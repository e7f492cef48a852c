"""Typed errors of this package; the CLI turns each into one clear message and its exit code."""

from __future__ import annotations

from debuglab.core.errors import DebuglabError


class ReproduceError(DebuglabError):
    """A bug has no reproduce script, or the lab cannot run one now."""
