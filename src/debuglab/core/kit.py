"""Where the kit's own files are: the catalog, the locks, the instructor's material."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from debuglab.core.errors import DebuglabError


@dataclass(frozen=True)
class Kit:
    root: Path

    @classmethod
    def default(cls) -> "Kit":
        """The kit this package was installed from (editable), or $DEBUGLAB_KIT."""
        if os.environ.get("DEBUGLAB_KIT"):
            return cls(Path(os.environ["DEBUGLAB_KIT"]).resolve())
        for parent in Path(__file__).resolve().parents:
            if (parent / "requirements" / "upstream.lock").is_file():
                return cls(parent)
        raise DebuglabError(
            "cannot find the debuglab kit (bugs/, requirements/): install it editable "
            "from its repository (pip install -e .) or set DEBUGLAB_KIT to its folder"
        )

    @property
    def bugs_dir(self) -> Path:
        return self.root / "bugs"

    @property
    def solutions_dir(self) -> Path:
        return self.root / "instructor" / "solutions"

    @property
    def upstream_lock(self) -> Path:
        return self.root / "requirements" / "upstream.lock"

    @property
    def venv_lock(self) -> Path:
        return self.root / "requirements" / "lab.lock"


def cache_dir() -> Path:
    """Downloads and built wheels, shared by every lab on this machine."""
    if os.environ.get("DEBUGLAB_CACHE"):
        return Path(os.environ["DEBUGLAB_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "debuglab"


_uv_lock = threading.Lock()
_uv_path: str | None = None


def uv_bin() -> str:
    """The uv executable that came with the kit. Looked up once, under a lock: its
    finder reads sysconfig, whose first use is not thread-safe (two labs built at
    once by `bugs verify --live` saw `get_config_var("EXE")` answer None)."""
    global _uv_path
    with _uv_lock:
        if _uv_path is None:
            from uv import find_uv_bin

            _uv_path = find_uv_bin()
        return _uv_path
