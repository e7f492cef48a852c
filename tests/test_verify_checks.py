"""`debuglab bugs verify`, Defects4J-style, over the real catalog with nova's real tests."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from debuglab.catalog.model import Catalog
from debuglab.verify import records
from tests._util import DEBUGLAB, make_patch

pytestmark = pytest.mark.slow


def verify(lab, *args, kit_root=None):
    env = {**os.environ, "COLUMNS": "200"}
    if kit_root:
        env["DEBUGLAB_KIT"] = str(kit_root)
    return subprocess.run([DEBUGLAB, "bugs", "verify", "--lab", lab.root, *args],
                          capture_output=True, text=True, env=env, timeout=1800)


def test_every_bug_is_verified_now_or_has_a_current_record(catalog_verification, kit):
    """The run started with the session, on one core (conftest): every bug whose record is
    out of date, and a rotating sample of the others. Its visible tests include nova's
    compute tests, which also prove the lab venv's lock: with SQLAlchemy 2.1 (an unpinned
    resolve) about 200 of them fail on pristine upstream too, as nova turns its deprecation
    warnings into errors; verify names such failures apart."""
    result = catalog_verification
    assert result.returncode == 0, result.stdout + result.stderr
    assert "records out of date:" in result.stdout
    bugs = list(Catalog.load(kit.bugs_dir).bugs.values())
    rows = {bug.id: next((line for line in result.stdout.splitlines() if f" {bug.id} " in line), None)
            for bug in bugs}
    verified = [bug for bug in bugs if rows[bug.id] is not None]
    for bug in bugs:
        row = rows[bug.id]
        if row is None:  # not in this run: its record must say what it was verified against
            assert records.is_current(kit, bug), f"{bug.id}: neither verified now nor a current record"
            continue
        # nothing given away, pristine, injected, fix, alternative, wrong; all together when
        # the run holds another bug of its project; tiers 2 and 3: nova's visible tests too
        together = sum(b.project == bug.project for b in verified) > 1
        assert row.count("✓") == 6 + together + (bug.difficulty >= 2) and "ok" in row, row
        if bug.difficulty >= 2:
            ran = re.search(r"✓ (\d+)", row.split("✓", 6 + together)[-1])
            assert ran and int(ran.group(1)) > 0, row  # the visible modules ran tests, not nothing
    assert len(verified) >= 3, result.stdout  # the sample, at least
    assert "fail on pristine upstream too" not in result.stdout, result.stdout
    assert "tests/s" in result.stdout


def test_a_fix_that_fixes_nothing_is_reported_and_fails_the_run(lab, kit_copy):
    bug = next(b for b in Catalog.load(kit_copy.bugs_dir).bugs.values() if b.project == "nova")
    target = bug.scope[0]
    first_line = (lab.checkout("nova") / target).read_text().splitlines()[0]
    harmless = make_patch(lab.checkout("nova"), target, first_line, first_line + "  # tidied")
    (kit_copy.solutions_dir / bug.id / "alternative.patch").write_text(harmless)
    # and a "wrong" fix that is in fact right: the hidden tests would look gameable
    fix = (kit_copy.solutions_dir / bug.id / "fix.patch").read_text()
    (kit_copy.solutions_dir / bug.id / "wrong.patch").write_text(fix)
    # and an objective that names the cause (its scope file's name)
    toml = bug.folder / "bug.toml"
    scope_file = target.rsplit("/", 1)[-1]
    toml.write_text(toml.read_text().replace("objectives = [", f'objectives = [\n    "Read {scope_file} closely",', 1))
    before = records.read(bug)
    result = verify(lab, bug.id, kit_root=kit_copy.root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DEVIATES" in result.stdout
    assert records.read(bug) == before, "a bug that deviates got a new record"
    assert f"{bug.id}: alternative fix: {len(bug.fail_to_pass)} fail_to_pass test(s) should pass" in result.stdout
    assert f"{bug.id}: wrong fix fails: the wrong fix passes every fail_to_pass test" in result.stdout
    assert f"{bug.id}: nothing given away: objective 1 names {scope_file!r}" in result.stdout
    assert "reference fix:" not in result.stdout, "the reference fix still verifies"


def _without_test_changes(patch: str) -> str:
    """The patch minus its sections for test files (the adjustments that let a bug slip past review)."""
    sections = re.split(r"(?m)^(?=diff --git )", patch)
    return "".join(s for s in sections if s and "/tests/" not in s.splitlines()[0])


def test_a_tier_2_bug_caught_by_a_visible_test_and_a_test_id_that_does_not_exist_are_named(lab, kit_copy):
    """Tiers 2 and 3 must slip past nova's own tests; verify runs them and names any that fail."""
    bug = next(b for b in Catalog.load(kit_copy.bugs_dir).bugs.values()
               if b.difficulty >= 2 and "/tests/" in b.inject_patch.read_text()
               and all(m.count(".") >= 4 and "test_compute" not in m for m in b.visible_modules))
    bug.inject_patch.write_text(_without_test_changes(bug.inject_patch.read_text()))
    toml = bug.folder / "bug.toml"
    typo = bug.pass_to_pass[0] + "_typo"
    toml.write_text(toml.read_text().replace("pass_to_pass = [", f'pass_to_pass = [\n    "{typo}",', 1))
    result = verify(lab, bug.id, kit_root=kit_copy.root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"{bug.id}: visible tests: \d+ visible test\(s\) fail with the bug planted", result.stdout), result.stdout
    assert f"test id(s) do not exist in this tree (a typo, or a test the patch renamed): {typo}" in result.stdout
    row = next(line for line in result.stdout.splitlines() if f" {bug.id} " in line)
    assert re.search(r"✗ \d+, \d+ fail", row), row  # the count per bug, in the table


def test_a_bug_that_verifies_gets_a_current_record_and_then_needs_no_run(lab, kit_copy):
    """`bugs verify` records what a bug was verified against; `--changed` then has nothing
    to verify for it, until one of its inputs changes."""
    bug = next(b for b in Catalog.load(kit_copy.bugs_dir).bugs.values() if b.project == "python-novaclient")
    others = [b for b in Catalog.load(kit_copy.bugs_dir).bugs.values() if b.id != bug.id]
    for other in others:  # only this bug is out of date
        records.write(kit_copy, other, 5.0)
    bug.verification_record.unlink()
    result = verify(lab, "--changed", "--sample", "0", kit_root=kit_copy.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"records out of date: {bug.id};" in result.stdout
    assert records.is_current(kit_copy, bug) and records.read(bug).reference_fix_seconds > 0
    again = verify(lab, "--changed", "--sample", "0", kit_root=kit_copy.root)
    assert again.returncode == 0 and "nothing to verify" in again.stdout, again.stdout + again.stderr
