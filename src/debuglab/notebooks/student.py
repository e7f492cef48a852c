"""A lab's own copy of the notebooks, `<lab>/notebooks/`: what JupyterLab serves, and what
the student writes their answers into (two labs on one machine never edit the same file,
and nothing a student types lands in the kit's checkout).

Made from the kit's `labs/` (the technique labs, and the notebooks of the bugs planted in
the lab) and refreshed from it at every JupyterLab start: a notebook the student has not
changed follows the kit; one they changed is never overwritten. `.kit-notebooks.json`
records the sha256 of each file as the kit last wrote it, which tells the two apart.
The copy is the student's work: a rebuild carries it over (and saves it), `collect`
brings back the notebooks they changed. Standard library only: the provisioning agent
runs this on a class host.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from debuglab.core.files import write_atomic

FOLDER = "notebooks"
MANIFEST = ".kit-notebooks.json"
KIT_ONLY = ("devstack", "reproduce")  # labs/ subfolders that are not a lab's notebooks


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(dest: Path) -> dict[str, str]:
    try:
        return json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def kit_files(kit_labs: Path, bug_ids: list[str]) -> list[Path]:
    """The kit's notebooks (and READMEs) a lab with these bugs gets, relative to labs/."""
    out = []
    for path in sorted(kit_labs.rglob("*")):
        rel = path.relative_to(kit_labs)
        if not path.is_file() or rel.parts[0] in KIT_ONLY or path.suffix not in (".ipynb", ".md"):
            continue
        if rel.parts[0] == "bugs" and path.stem not in bug_ids:
            continue
        out.append(rel)
    return out


def refresh(dest: Path, kit_labs: Path, bug_ids: list[str]) -> list[str]:
    """Bring `dest` up to the kit's notebooks without touching a file the student changed;
    returns what was written."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest, written = _manifest(dest), []
    for rel in kit_files(kit_labs, bug_ids):
        source, target, key = kit_labs / rel, dest / rel, str(rel)
        new = _sha(source)
        if target.exists():
            current = _sha(target)
            if current == new:
                manifest[key] = new
                continue
            if manifest.get(key) != current:
                continue  # the student's own version
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, source.read_bytes())
        manifest[key] = new
        written.append(key)
    write_atomic(dest / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return written


def edited(dest: Path) -> dict[str, str]:
    """The notebooks the student changed or added: {path relative to dest: text}."""
    manifest, out = _manifest(dest), {}
    for path in sorted(dest.rglob("*")) if dest.is_dir() else []:
        rel = str(path.relative_to(dest))
        if path.is_file() and path.suffix in (".ipynb", ".md", ".py", ".txt") and ".ipynb_checkpoints" not in rel \
                and manifest.get(rel) != _sha(path):
            out[rel] = path.read_text(errors="replace")
    return out
