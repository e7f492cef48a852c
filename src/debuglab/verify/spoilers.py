"""The spoiler guard: nothing a student sees before the fix names the cause.

What a student sees before the fix: the bug's title, its story, its objectives, its
notebook (the story again, the setup, the reproduce cell's code), the output of its
reproduce script, and the first hint. None of it may hold one of the bug's `spoilers`
(the identifiers and phrases that name the cause, listed in its bug.toml) or name a file
of its scope. Later hints may come closer; the last may name the file.
"""

from __future__ import annotations

import re

from debuglab.catalog.model import Bug
from debuglab.core.kit import Kit
from debuglab.notebooks import content


def _words(spoiler: str) -> re.Pattern:
    """`spoiler` as a whole word or phrase, whatever the case (`in place` is not in `in placement`)."""
    return re.compile(rf"(?<![\w]){re.escape(spoiler)}(?![\w])", re.IGNORECASE)


def forbidden(bug: Bug) -> tuple[str, ...]:
    """The bug's spoilers, and each scope file's path and name."""
    files = [p for path in bug.scope for p in (path, path.rsplit("/", 1)[-1])]
    return tuple(dict.fromkeys((*bug.spoilers, *files)))


def seen_before_the_fix(bug: Bug, kit: Kit) -> dict[str, str]:
    """Each text a student sees before the fix, by what it is (the reproduce script's
    output is added by `bugs verify --live`, which runs it)."""
    reproduce = kit.root / "labs" / "reproduce" / f"{bug.id}.py"
    script = reproduce.read_text() if reproduce.is_file() else None
    texts = {"title": bug.title, "story": bug.symptom}
    texts.update({f"objective {n}": text for n, text in enumerate(bug.objectives, 1)})
    texts["the first hint"] = bug.hints[0] if bug.hints else ""
    notebook = content.bug_notebook(bug, script)
    texts["the notebook"] = "\n".join(cell.source for cell in notebook.cells)
    return texts


def leaks(bug: Bug, texts: dict[str, str]) -> list[str]:
    """Where `texts` name the cause: "objective 3 names 'aggs_by_id'"."""
    found = []
    for label, text in texts.items():
        for spoiler in forbidden(bug):
            if _words(spoiler).search(text):
                found.append(f"{label} names {spoiler!r}")
    return found
