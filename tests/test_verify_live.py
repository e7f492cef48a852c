"""`debuglab bugs verify --live`: every symptom proven on a running cloud with the whole
catalog planted, and gone with only that bug's reference fix (the CI run of the catalog)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from tests._util import DEBUGLAB, make_patch

pytestmark = pytest.mark.slow


def verify_live(*args, kit_root=None):
    env = {**os.environ, "COLUMNS": "220"}
    if kit_root:
        env["DEBUGLAB_KIT"] = str(kit_root)
    return subprocess.run([DEBUGLAB, "bugs", "verify", "--live", *args], capture_output=True, text=True,
                          env=env, timeout=2400)


def test_every_symptom_shows_with_the_catalog_planted_and_goes_with_its_fix(kit):
    result = verify_live()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    for bug_id in Catalog.load(kit.bugs_dir).bugs:
        row = next(line for line in result.stdout.splitlines() if f" {bug_id} " in line)
        assert "bug shown" in row and "right" in row and "ok" in row, row
    assert re.search(r"the cloud started in [\d.]+ s with them all planted and held \d+ MiB", result.stdout)
    assert not list(Path("/tmp").glob(".verify-live-*")), "the scratch lab was left behind"


def test_a_reference_fix_that_does_not_remove_the_symptom_is_caught(kit_copy, kit, lab):
    shutil.copytree(kit.root / "labs" / "reproduce", kit_copy.root / "labs" / "reproduce")
    bug = Catalog.load(kit_copy.bugs_dir).bugs["num-instances-off-by-one"]
    target = bug.scope[0]
    first_line = (lab.checkout("nova") / target).read_text().splitlines()[0]
    (kit_copy.solutions_dir / bug.id / "fix.patch").write_text(  # a "fix" that only tidies a comment
        make_patch(lab.checkout("nova"), target, first_line, first_line + "  # tidied"))
    result = verify_live(bug.id, kit_root=kit_copy.root)
    assert result.returncode == 1, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if f" {bug.id} " in line)
    assert "DEVIATES" in row and "bug shown" in row, row
