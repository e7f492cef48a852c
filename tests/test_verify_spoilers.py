"""The spoiler guard: what a student sees before the fix never names the cause."""

from __future__ import annotations

import dataclasses

from debuglab.catalog.model import Catalog
from debuglab.verify import spoilers


def _bug(kit, **changes):
    bug = next(b for b in Catalog.load(kit.bugs_dir).bugs.values() if b.project == "nova")
    return dataclasses.replace(bug, **changes)


def test_the_whole_catalog_gives_nothing_away(kit):
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        assert spoilers.leaks(bug, spoilers.seen_before_the_fix(bug, kit)) == [], bug.id


def test_a_spoiler_planted_in_an_objective_the_story_or_the_first_hint_is_named(kit):
    bug = _bug(kit, spoilers=("aggs_by_id", "in place"))
    assert spoilers.leaks(bug, spoilers.seen_before_the_fix(bug, kit)) == []
    leaky = dataclasses.replace(bug, objectives=(*bug.objectives, "Print self.AGGS_BY_ID in the scheduler"),
                                hints=("The update is applied in place.", *bug.hints[1:]))
    found = spoilers.leaks(leaky, spoilers.seen_before_the_fix(leaky, kit))
    assert f"objective {len(leaky.objectives)} names 'aggs_by_id'" in found
    assert "the first hint names 'in place'" in found


def test_a_spoiler_in_the_reproduce_cell_of_the_notebook_is_named(kit_copy):
    bug = _bug(kit_copy, spoilers=("aggs_by_id",))
    script = kit_copy.root / "labs" / "reproduce" / f"{bug.id}.py"
    script.parent.mkdir(parents=True)
    script.write_text("aggs_by_id = nova.aggregates.list()\nBUG_SEEN = bool(aggs_by_id)\n")
    assert spoilers.leaks(bug, spoilers.seen_before_the_fix(bug, kit_copy)) == ["the notebook names 'aggs_by_id'"]


def test_later_hints_may_name_the_cause(kit):
    bug = _bug(kit, spoilers=("aggs_by_id",))
    late = dataclasses.replace(bug, hints=(*bug.hints[:-1], "Look at aggs_by_id in host_manager.py"))
    assert spoilers.leaks(late, spoilers.seen_before_the_fix(late, kit)) == []


def test_a_spoiler_is_a_whole_word_or_phrase(kit):
    bug = _bug(kit, spoilers=("in place", "ram"))
    texts = {"story": "Placement answers in placement's own log; the program crashed."}
    assert spoilers.leaks(bug, texts) == []
    assert spoilers.leaks(bug, {"story": "Its RAM is updated in  place"}) == ["story names 'ram'"]


def test_a_file_of_the_scope_is_a_spoiler_by_its_path_and_by_its_name(kit):
    bug = _bug(kit, spoilers=())
    path = bug.scope[0]
    assert spoilers.leaks(bug, {"story": f"see {path}"}) == [f"story names {path!r}",
                                                             f"story names {path.rsplit('/', 1)[-1]!r}"]
