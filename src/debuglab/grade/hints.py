"""A student's hints, revealed one at a time by `debuglab check` and remembered in the
workspace (`.debuglab/hints.json`), so each check shows the next one not yet seen."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from debuglab.catalog.model import Bug

STATE = Path(".debuglab") / "hints.json"


@dataclass(frozen=True)
class Hint:
    bug_id: str
    number: int  # 1-based
    of: int
    text: str


def _path(ws_root: Path) -> Path:
    return Path(ws_root) / STATE


def seen(ws_root: Path) -> dict[str, int]:
    """bug id → how many of its hints the student has seen."""
    try:
        data = json.loads(_path(ws_root).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.get("seen", {}).items() if isinstance(k, str) and isinstance(v, int) and v >= 0}


def reveal_next(ws_root: Path, bug: Bug) -> Hint | None:
    """The next hint of `bug` not yet seen (recorded as seen), or None when all were."""
    state = seen(ws_root)
    count = state.get(bug.id, 0)
    if count >= len(bug.hints):
        return None
    state[bug.id] = count + 1
    path = _path(ws_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.partial")
    tmp.write_text(json.dumps({"version": 1, "seen": state}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return Hint(bug.id, count + 1, len(bug.hints), bug.hints[count])


def shown(ws_root: Path, bug: Bug) -> list[Hint]:
    """Every hint of `bug` the student has already seen."""
    count = min(seen(ws_root).get(bug.id, 0), len(bug.hints))
    return [Hint(bug.id, n + 1, len(bug.hints), bug.hints[n]) for n in range(count)]
