"""Files that hold a secret (tokens, passwords, credentials, databases): readable by
their owner only, in folders only the owner can enter, from the first byte on.

A lab host is shared: every other local user must not read a student's token or the
cloud's passwords. Processes the kit starts (the cloud, JupyterLab) run with UMASK, so
that what they create themselves (keystone.sqlite, Jupyter's runtime files) is private too.
"""

from __future__ import annotations

import os
from pathlib import Path

from debuglab.core.files import write_atomic

UMASK = 0o077  # for the processes the kit starts: files 0600, folders 0700


def folder(path: Path) -> Path:
    """Make `path` (and its missing parents) exist, and `path` itself 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def touch(path: Path) -> None:
    """Make `path` exist, readable by its owner only."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)


def write_text(path: Path, text: str) -> None:
    """Write `path` whole (a temporary file renamed over it), 0600 from the first byte."""
    write_atomic(path, text, mode=0o600)
