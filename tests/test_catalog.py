"""The catalog's schema: the real bugs load, and every kind of malformed bug.toml is
refused with the file, the field and the problem."""

from __future__ import annotations

import re

import pytest

from debuglab.catalog.errors import BugChoiceError, CatalogError, UnknownBugError
from debuglab.catalog.model import Catalog, load_bug, parse_bug_set, patch_paths
from debuglab.core.kit import Kit
from tests._util import ROOT, write_novaclient_bug


@pytest.fixture(scope="module")
def real_bugs() -> list:
    return list(Catalog.load(Kit(ROOT).bugs_dir).bugs.values())


def test_the_catalog_has_every_tier_and_every_layer(real_bugs):
    """At least 5 bugs of each tier, every layer, and the layers past the API twice."""
    from collections import Counter

    from debuglab.catalog.model import LAYERS

    tiers = Counter(bug.difficulty for bug in real_bugs)
    assert len(real_bugs) >= 15 and all(tiers[t] >= 5 for t in (1, 2, 3)), tiers
    layers = Counter(bug.layer for bug in real_bugs)
    assert set(layers) == set(LAYERS), layers
    assert layers["compute-manager"] + layers["conductor"] >= 2


def test_each_bug_keeps_its_tests_hidden_and_its_patch_in_scope(real_bugs):
    """Hints, hidden fail_to_pass tests, a patch that touches only its scope (and tests),
    no solution beside the bug; tiers 2 and 3 fail no visible test."""
    for bug in real_bugs:
        assert bug.folder.name == bug.id
        assert len(bug.hints) >= 3 and bug.fail_to_pass
        assert set(patch_paths(bug.inject_patch.read_text())) - set(bug.scope) <= {
            p for p in patch_paths(bug.inject_patch.read_text()) if "/tests/" in p}
        assert any(".debuglab_hidden." in i for i in bug.fail_to_pass)
        assert not (bug.folder / "fix.patch").exists()
        if bug.difficulty >= 2:  # nothing visible fails: verify runs these modules
            assert bug.visible_modules and not [i for i in bug.fail_to_pass if ".debuglab_hidden." not in i], bug.id


def test_each_bug_has_three_fixes_a_writeup_and_a_reproduce_script(real_bugs):
    kit = Kit(ROOT)
    for bug in real_bugs:
        for kind in ("fix", "alternative", "wrong"):
            assert (kit.solutions_dir / bug.id / f"{kind}.patch").is_file(), (bug.id, kind)
        writeup = (kit.solutions_dir / bug.id / "writeup.md").read_text()
        assert re.search(r"\*\*Expected time:\*\* \d+ minutes", writeup), bug.id
        assert "**Found by:**" in writeup, bug.id
        script = kit.root / "labs" / "reproduce" / f"{bug.id}.py"
        assert "BUG_SEEN" in script.read_text(), bug.id


def test_no_story_or_objective_names_a_file_of_its_scope(real_bugs):
    for bug in real_bugs:
        for text in (bug.symptom, *bug.objectives):
            for path in bug.scope:
                assert path not in text and path.rsplit("/", 1)[-1] not in text, (bug.id, path)


@pytest.fixture
def valid_bug(tmp_path, novaclient_checkout):
    return write_novaclient_bug(tmp_path / "bugs", "upper-names", novaclient_checkout,
                                "', '.join(\"'%s'\"", "'; '.join(\"'%s'\"")


def test_a_valid_bug_loads_into_a_frozen_dataclass(valid_bug):
    bug = load_bug(valid_bug)
    assert bug.id == "upper-names" and bug.difficulty == 1
    assert bug.hidden_module == "test_upper_names"
    assert bug.test_ids == bug.fail_to_pass + bug.pass_to_pass
    with pytest.raises(AttributeError):
        bug.id = "other"


BROKEN = [
    # (what to replace in bug.toml, with what, the field the error must name, words it must say)
    ('difficulty = 1', 'difficulty = 4', "difficulty", "not 1, 2 or 3"),
    ('difficulty = 1', 'difficulty = "easy"', "difficulty", "must be int"),
    ('difficulty = 1\n', '', "difficulty", "missing"),
    ('spoilers = ["upper()", "capitalize"]\n', '', "spoilers", "missing"),
    ('spoilers = ["upper()", "capitalize"]', 'spoilers = ["upper()", ""]', "spoilers", "non-empty string"),
    ('layer = "client"', 'layer = "network"', "layer", "not one of"),
    ('project = "python-novaclient"', 'project = "neutron"', "project", "not one of"),
    ('id = "upper-names"', 'id = "Upper_Names"', "id", "kebab-case"),
    ('id = "upper-names"', 'id = "other-name"', "id", "folder"),
    ('hints = ["look at the client", "look at the utils", "look at one function"]',
     'hints = ["look", "closer"]', "hints", "at least 3"),
    ('techniques = ["pdb"]', 'techniques = ["printf"]', "techniques", "not one of"),
    ('scope = ["novaclient/utils.py"]', 'scope = ["novaclient/tests/unit/test_utils.py"]', "scope", "test or runner"),
    ('scope = ["novaclient/utils.py"]', 'scope = ["../outside.py"]', "scope", "inside the checkout"),
    ('title = "Server names come out upper-cased"', 'title = ""', "title", "empty"),
    ('title = "Server names come out upper-cased"', 'titel = "typo"', "titel", "unknown field"),
    ('fixed = "Fixed."', 'fixed = 3', "feedback.fixed", "must be str"),
    ('pass_to_pass = [', 'pass_to_pass = ["novaclient.tests.unit.debuglab_hidden.test_upper_names.T.test_a", ',
     "tests", "both"),
    # tiers 2 and 3 promise that no visible test fails: they must say which modules would
    ('difficulty = 1', 'difficulty = 2', "tests.visible_modules", "difficulty 2 needs the visible test modules"),
    ('[tests]', '[tests]\nvisible_modules = ["nova.tests.unit.test_utils"]', "tests.visible_modules",
     "not a dotted test module of novaclient"),
    ('[tests]', '[tests]\nvisible_modules = ["novaclient.tests.unit.v2.test_shell"]', "tests.visible_modules",
     "no module covers the scope file 'novaclient/utils.py'"),
    ('[tests]', '[tests]\nvisible_modules = ["novaclient.tests.unit.debuglab_hidden.test_upper_names"]',
     "tests.visible_modules", "hidden test module"),
]


@pytest.mark.parametrize("old,new,field,words", BROKEN, ids=[b[2] + ":" + b[3] for b in BROKEN])
def test_malformed_bug_toml_names_file_field_and_problem(valid_bug, old, new, field, words):
    path = valid_bug / "bug.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError) as caught:
        load_bug(valid_bug)
    message = str(caught.value)
    assert str(path) in message
    assert re.search(rf"field '{re.escape(field)}'.*{re.escape(words)}", message), message


def test_every_problem_of_a_file_is_reported_at_once(valid_bug):
    path = valid_bug / "bug.toml"
    path.write_text(path.read_text().replace("difficulty = 1", "difficulty = 9").replace('layer = "client"', 'layer = "x"'))
    message = str(pytest.raises(CatalogError, load_bug, valid_bug).value)
    assert "'difficulty'" in message and "'layer'" in message


def test_not_toml_is_reported_with_the_file(valid_bug):
    (valid_bug / "bug.toml").write_text("id = \n")
    with pytest.raises(CatalogError, match=r"bug\.toml: not valid TOML"):
        load_bug(valid_bug)


def test_patch_outside_scope_and_missing_files_are_refused(valid_bug):
    path = valid_bug / "bug.toml"
    path.write_text(path.read_text().replace('scope = ["novaclient/utils.py"]', 'scope = ["novaclient/shell.py"]'))
    (valid_bug / "test_hidden.py").unlink()
    message = str(pytest.raises(CatalogError, load_bug, valid_bug).value)
    assert "touches 'novaclient/utils.py', which is outside the bug's scope" in message
    assert "test_hidden.py: missing" in message


def test_visible_modules_that_cover_the_scope_are_accepted(valid_bug):
    path = valid_bug / "bug.toml"
    path.write_text(path.read_text().replace("difficulty = 1", "difficulty = 3").replace(
        "[tests]", '[tests]\nvisible_modules = ["novaclient.tests.unit.test_utils"]'))
    assert load_bug(valid_bug).visible_modules == ("novaclient.tests.unit.test_utils",)


def test_an_upstream_other_than_the_locked_one_and_a_patch_that_is_no_diff_are_refused(valid_bug, kit):
    (valid_bug.parent.parent / "requirements").mkdir()
    (valid_bug.parent.parent / "requirements" / "upstream.lock").write_text(kit.upstream_lock.read_text())
    assert load_bug(valid_bug).upstream == "18.13.1"
    path = valid_bug / "bug.toml"
    path.write_text(path.read_text().replace('upstream = "18.13.1"', 'upstream = "18.12.0"'))
    (valid_bug / "inject.patch").write_text("I changed utils.py so that names come out in capitals\n")
    message = str(pytest.raises(CatalogError, load_bug, valid_bug).value)
    assert "field 'upstream': '18.12.0' is not the locked python-novaclient 18.13.1" in message
    assert "inject.patch: not a unified diff" in message


def test_hidden_test_ids_must_name_the_bugs_own_module(valid_bug):
    path = valid_bug / "bug.toml"
    path.write_text(path.read_text().replace("debuglab_hidden.test_upper_names", "debuglab_hidden.test_someone_else"))
    with pytest.raises(CatalogError, match="another bug's hidden module"):
        load_bug(valid_bug)


def test_one_broken_bug_breaks_the_catalog_load_with_its_path(valid_bug):
    broken = valid_bug.parent / "second-bug"
    broken.mkdir()
    (broken / "bug.toml").write_text('id = "second-bug"\n')
    message = str(pytest.raises(CatalogError, Catalog.load, valid_bug.parent).value)
    assert "second-bug/bug.toml: field 'title': missing" in message


def test_unknown_bug_id_suggests_the_closest(kit):
    catalog = Catalog.load(kit.bugs_dir)
    some = next(iter(catalog.bugs))
    with pytest.raises(UnknownBugError, match=f"did you mean '{some}'"):
        catalog.select([some[:-1]])
    assert catalog.select([]) == list(catalog.bugs.values())
    assert catalog.select([some, some]) == [catalog.bugs[some]]


def test_public_view_hides_hints_scope_tests_and_feedback(kit):
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        shown = repr(bug.public())
        for secret in (*bug.hints, *bug.scope, *bug.test_ids, bug.feedback.fixed):
            assert secret not in shown


def test_bug_sets_parse():
    assert parse_bug_set(None) == [] and parse_bug_set("all") == [] and parse_bug_set(" all ") == []
    assert parse_bug_set("a, b,,c") == ["a", "b", "c"]
    assert parse_bug_set("none") is None  # a lab without bugs, not the whole catalog


@pytest.mark.parametrize("text", ["", ",", " ", " , ,"])
def test_a_bug_set_that_names_nothing_is_bad_input_not_the_whole_catalog(text):
    with pytest.raises(BugChoiceError, match="names no bug") as caught:
        parse_bug_set(text)
    assert caught.value.exit_code == 2 and "'all'" in str(caught.value) and "'none'" in str(caught.value)


@pytest.mark.parametrize("text", ["all,a", "a,none"])
def test_all_and_none_stand_alone(text):
    with pytest.raises(BugChoiceError, match="stand alone"):
        parse_bug_set(text)


def test_a_bugs_grading_deadline_comes_from_its_measured_reference_fix(valid_bug):
    assert load_bug(valid_bug).deadline(600) == 600  # not measured yet: the limit
    (valid_bug / "verified.toml").write_text("reference_fix_seconds = 4.5\n")
    bug = load_bug(valid_bug)
    assert bug.reference_seconds == 4.5 and bug.deadline(600) == 75 and bug.deadline(60) == 60
    (valid_bug / "verified.toml").write_text("reference_fix_seconds = -1\n")
    with pytest.raises(CatalogError, match="verified.toml: field 'reference_fix_seconds' must be a positive"):
        load_bug(valid_bug)


def test_the_instructors_sets_load_and_fit_their_sessions(kit):
    from debuglab.catalog.model import load_set, sets_dir

    names = sorted(p.stem for p in sets_dir(kit.bugs_dir).glob("*.toml"))
    assert {"session-90", "half-day", "full-day"} <= set(names)
    catalog = Catalog.load(kit.bugs_dir)
    for name in names:
        bug_set = load_set(kit.bugs_dir, name)
        assert bug_set.items and bug_set.bug_minutes <= bug_set.minutes
        assert set(bug_set.bug_ids) <= set(catalog.bugs)
    assert set(load_set(kit.bugs_dir, "full-day").bug_ids) == set(catalog.bugs)


@pytest.mark.parametrize("text, words", [
    ('title = "t"\nminutes = 30\n[[bugs]]\nid = "upper-namez"\nminutes = 10\n', "unknown bug 'upper-namez'; did you mean 'upper-names'"),
    ('title = "t"\nminutes = 30\n[[bugs]]\nid = "upper-names"\nminutes = 40\n', "the bugs need 40 minutes, more than the session's 30"),
    ('title = "t"\nminutes = 30\n[[bugs]]\nid = "upper-names"\nminutes = 10\n[[bugs]]\nid = "upper-names"\nminutes = 5\n', "in the set twice"),
    ('title = "t"\nminutes = 30\n[[bugs]]\nid = "upper-names"\nminutes = 0\n', "not a positive number of minutes"),
    ('title = "t"\nminutes = 30\n', "a set needs at least one bug"),
])
def test_a_broken_set_names_its_file_field_and_problem(valid_bug, text, words):
    from debuglab.catalog.model import load_set, sets_dir

    folder = sets_dir(valid_bug.parent)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mine.toml").write_text(text)
    message = str(pytest.raises(CatalogError, load_set, valid_bug.parent, "mine").value)
    assert str(folder / "mine.toml") in message and words in message, message
    assert "the sets are: mine" in str(pytest.raises(CatalogError, load_set, valid_bug.parent, "nope").value)


def test_a_patch_path_with_a_detour_is_named_as_such_not_as_outside_the_checkout():
    """`nova/api/openstack/compute/views/../views/keypairs.py` got "a path outside the checkout"."""
    from debuglab.catalog.model import path_problem

    assert path_problem("nova/compute/api.py") is None
    detour = path_problem("nova/api/openstack/compute/views/../views/keypairs.py")
    assert "outside" not in detour and "'nova/api/openstack/compute/views/keypairs.py'" in detour
    assert "leads outside the checkout" in path_problem("nova/../../etc/passwd")
    assert "absolute path" in path_problem("/etc/passwd")
