"""Each bug's verification record: a hash of what the verification depends on, so that CI
verifies again only the bugs whose inputs changed (and a rotating sample of the others)."""

from __future__ import annotations

from debuglab.catalog.model import Catalog
from debuglab.verify import records


def _bugs(kit):
    return list(Catalog.load(kit.bugs_dir).bugs.values())


def _record_all(kit):
    for bug in _bugs(kit):
        records.write(kit, bug, 3.0)


def test_a_written_record_is_current_until_an_input_changes(kit_copy):
    _record_all(kit_copy)
    bugs = {b.id: b for b in _bugs(kit_copy)}
    assert all(records.is_current(kit_copy, b) for b in bugs.values())
    assert records.select(kit_copy, list(bugs.values()), sample=0).bug_ids == []
    one, two, client = sorted(b for b in bugs if bugs[b].project == "nova")[:2] + \
        [next(b for b in sorted(bugs) if bugs[b].project == "python-novaclient")]
    # the bug's own folder (its story is part of what a student sees) and its wrong fix
    toml = bugs[one].folder / "bug.toml"
    toml.write_text(toml.read_text() + "\n")
    wrong = kit_copy.solutions_dir / two / "wrong.patch"
    wrong.write_text(wrong.read_text() + "\n")
    changed = records.select(kit_copy, list(bugs.values()), sample=0).changed
    assert set(changed) == {one, two}, changed
    assert records.is_current(kit_copy, bugs[client])


def test_a_lock_that_changes_makes_every_record_stale(kit_copy):
    _record_all(kit_copy)
    kit_copy.venv_lock.write_text(kit_copy.venv_lock.read_text() + "# relocked\n")
    bugs = _bugs(kit_copy)
    assert set(records.select(kit_copy, bugs, sample=0).changed) == {b.id for b in bugs}


def test_a_record_without_a_hash_or_without_a_file_is_stale(kit_copy):
    _record_all(kit_copy)
    first, second = _bugs(kit_copy)[:2]
    first.verification_record.unlink()
    second.verification_record.write_text("reference_fix_seconds = 2.0\n")
    assert set(records.select(kit_copy, _bugs(kit_copy), sample=0).changed) == {first.id, second.id}


def test_the_sample_rotates_from_day_to_day_over_every_current_record(kit_copy):
    _record_all(kit_copy)
    bugs = _bugs(kit_copy)
    days = [records.select(kit_copy, bugs, sample=3, day=d) for d in range(len(bugs))]
    assert all(len(s.sample) == 3 and not s.changed for s in days)
    assert days[0].sample != days[1].sample
    assert {i for s in days for i in s.sample} == {b.id for b in bugs}  # every record is checked in turn


def test_the_record_carries_the_grading_deadline(kit_copy):
    bug = _bugs(kit_copy)[0]
    records.write(kit_copy, bug, 4.5)
    again = Catalog.load(kit_copy.bugs_dir, [bug.id]).select([bug.id])[0]
    assert again.reference_seconds == 4.5 and again.deadline(600) == 75
    assert records.read(again).inputs_sha256 == records.inputs_sha256(kit_copy, again)
