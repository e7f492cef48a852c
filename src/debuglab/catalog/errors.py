"""Typed errors of this package; the CLI turns each into one clear message and its exit code."""

from __future__ import annotations

from debuglab.core.errors import DebuglabError


class CatalogError(DebuglabError):
    """A bug folder is malformed (the message names the file and the field)."""


class BugChoiceError(DebuglabError):
    """A `--bugs` value that names no bug (an empty list), or mixes 'all'/'none' with ids."""


class UnknownBugError(DebuglabError):
    """A bug id that the catalog does not hold."""
