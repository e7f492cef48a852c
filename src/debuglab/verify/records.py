"""What each bug was last verified against: `bugs/<id>/verified.toml`, written by
`debuglab bugs verify` when the bug verifies, and committed with the bug.

The record holds a hash of everything the verification depends on (the bug's folder, its
three fixes, the upstream lock and the lab lock) and the reference fix's test time (the
grader's deadline for the bug). A bug whose inputs changed since its record is stale:
`bugs verify --changed` verifies the stale bugs (all of them, when a lock changed) and a
sample of the others that rotates from day to day, which is what CI runs.
"""

from __future__ import annotations

import datetime
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from debuglab.catalog.model import RECORD_FILE, Bug
from debuglab.core.files import write_atomic
from debuglab.core.kit import Kit

FIXES = ("fix", "alternative", "wrong")


@dataclass(frozen=True)
class Record:
    inputs_sha256: str | None
    verified_at: str | None
    reference_fix_seconds: float | None


def inputs(kit: Kit, bug: Bug) -> list[Path]:
    """Every file the bug's verification depends on, in a fixed order."""
    own = sorted(p for p in bug.folder.rglob("*") if p.is_file() and p.name != RECORD_FILE
                 and "__pycache__" not in p.parts)
    fixes = [kit.solutions_dir / bug.id / f"{kind}.patch" for kind in FIXES]
    return own + [p for p in fixes if p.is_file()] + [kit.upstream_lock, kit.venv_lock]


def inputs_sha256(kit: Kit, bug: Bug) -> str:
    digest = hashlib.sha256()
    for path in inputs(kit, bug):
        name = path.relative_to(kit.root).as_posix() if path.is_relative_to(kit.root) else path.name
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def read(bug: Bug) -> Record | None:
    """The bug's record, or None when it has none (or one that cannot be read)."""
    try:
        data = tomllib.loads((bug.folder / RECORD_FILE).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return Record(data.get("inputs_sha256"), data.get("verified_at"), data.get("reference_fix_seconds"))


def write(kit: Kit, bug: Bug, reference_fix_seconds: float) -> None:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write_atomic(bug.folder / RECORD_FILE,
                 "# written by `debuglab bugs verify` when the bug verified: a hash of what it was verified\n"
                 "# against (`bugs verify --changed` verifies it again once that changes), and the reference\n"
                 "# fix's tests in seconds, one worker (a grading run may take 10 times this plus 30 s)\n"
                 f'inputs_sha256 = "{inputs_sha256(kit, bug)}"\n'
                 f'verified_at = "{now}"\n'
                 f"reference_fix_seconds = {reference_fix_seconds:.1f}\n")


def is_current(kit: Kit, bug: Bug) -> bool:
    record = read(bug)
    return record is not None and record.inputs_sha256 == inputs_sha256(kit, bug)


@dataclass(frozen=True)
class Selection:
    changed: tuple[str, ...]  # no record, or one whose inputs changed
    sample: tuple[str, ...]  # current records, verified again all the same

    @property
    def bug_ids(self) -> list[str]:
        return sorted(self.changed + self.sample)


def select(kit: Kit, bugs: list[Bug], sample: int = 3, day: int | None = None) -> Selection:
    """The bugs to verify: every one whose record is not current, and `sample` of the
    others, a different few each day (so that over the days every record is checked)."""
    changed = tuple(b.id for b in bugs if not is_current(kit, b))
    current = sorted(b.id for b in bugs if b.id not in changed)
    if not current or sample <= 0:
        return Selection(changed, ())
    day = datetime.date.today().toordinal() if day is None else day
    start = (day * sample) % len(current)
    picked = [current[(start + i) % len(current)] for i in range(min(sample, len(current)))]
    return Selection(changed, tuple(sorted(picked)))
