"""A lab's own notebooks: made from the kit, refreshed without overwriting the
student's edits, carried over a rebuild, and found by collect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from debuglab.notebooks import student
from debuglab.provision import agent
from debuglab.provision.collect import _write_notebooks
from tests._util import ROOT


def kit_labs(tmp_path: Path) -> Path:
    labs = tmp_path / "kit-labs"
    shutil.copytree(ROOT / "labs", labs)
    return labs


def test_the_copy_has_the_technique_labs_and_only_the_planted_bugs(tmp_path):
    labs = kit_labs(tmp_path)
    planted = sorted(p.stem for p in (labs / "bugs").glob("*.ipynb"))[:1]
    dest = tmp_path / "lab" / "notebooks"
    written = student.refresh(dest, labs, planted)
    assert "01-welcome.ipynb" in written and f"bugs/{planted[0]}.ipynb" in written
    assert not [w for w in written if w.startswith(("devstack", "reproduce"))]
    assert sorted(p.name for p in (dest / "bugs").iterdir()) == [f"{planted[0]}.ipynb"]
    assert student.edited(dest) == {}


def test_a_refresh_follows_the_kit_but_never_overwrites_the_students_edit(tmp_path):
    labs = kit_labs(tmp_path)
    dest = tmp_path / "lab" / "notebooks"
    student.refresh(dest, labs, [])
    mine = dest / "02-pdb.ipynb"
    mine.write_text(mine.read_text().replace("pdb", "pdb (my answer)", 1))
    (dest / "scratch.ipynb").write_text(json.dumps({"cells": []}))
    for name in ("02-pdb.ipynb", "03-nova-tests.ipynb"):  # the kit changes both
        (labs / name).write_text((labs / name).read_text() + " ")
    written = student.refresh(dest, labs, [])
    assert written == ["03-nova-tests.ipynb"]  # the unedited one follows the kit
    assert "(my answer)" in mine.read_text()
    assert set(student.edited(dest)) == {"02-pdb.ipynb", "scratch.ipynb"}


def test_collect_brings_back_the_edited_notebooks_and_nothing_outside_its_folder(tmp_path):
    labs = kit_labs(tmp_path)
    lab = tmp_path / "lab"
    student.refresh(lab / "notebooks", labs, [])
    (lab / "notebooks" / "02-pdb.ipynb").write_text("{}")
    (lab / "lab.toml").write_text("[lab]\nbugs = []\n[projects]\n")
    reply = agent.op_collect({"profile": "lab", "dir": str(lab)})
    assert reply["notebooks"] == {"02-pdb.ipynb": "{}"}
    dest = tmp_path / "collected" / "notebooks"
    written = _write_notebooks(dest, {**reply["notebooks"], "../../escape.ipynb": "x"})
    assert written == ["02-pdb.ipynb"] and (dest / "02-pdb.ipynb").read_text() == "{}"
    assert not (tmp_path / "escape.ipynb").exists()
