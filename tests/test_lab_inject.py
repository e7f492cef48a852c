"""Injection on a real python-novaclient tree: all or none, idempotent, version-checked,
and never over a student's uncommitted work without saving it first."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from debuglab.catalog.model import load_bug
from debuglab.lab import gitrepo
from debuglab.lab.errors import InjectError, StudentWorkError
from debuglab.lab.inject import apply_patches, inject, is_applied
from debuglab.lab.upstream import copy_tree
from tests._util import write_novaclient_bug

CHOICE = ("', '.join(\"'%s'\"", "'; '.join(\"'%s'\"")  # pretty_choice_list
GROUPS = ("', '.join(group['name']", "','.join(group['name']")  # format_security_groups


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def two_bugs(tmp_path, novaclient_checkout):
    bugs_dir = tmp_path / "bugs"
    return [load_bug(write_novaclient_bug(bugs_dir, name, novaclient_checkout, *change))
            for name, change in (("choice-sep", CHOICE), ("group-sep", GROUPS))]


def test_inject_plants_every_bug_then_a_second_run_changes_nothing(novaclient_checkout, two_bugs):
    utils = novaclient_checkout / "novaclient" / "utils.py"
    first = inject(novaclient_checkout, two_bugs)
    assert first.applied == ("choice-sep", "group-sep") and first.already == ()
    text = utils.read_text()
    assert CHOICE[1] in text and GROUPS[1] in text
    before = tree_digest(novaclient_checkout)
    second = inject(novaclient_checkout, two_bugs)
    assert second.applied == () and second.already == ("choice-sep", "group-sep")
    assert tree_digest(novaclient_checkout) == before


def test_a_patch_that_does_not_apply_changes_nothing_and_names_file_and_hunk(novaclient_checkout, two_bugs):
    utils = novaclient_checkout / "novaclient" / "utils.py"
    # someone changed the lines the second bug's patch expects
    utils.write_text(utils.read_text().replace(GROUPS[0], "' | '.join(group['name']"))
    before = tree_digest(novaclient_checkout)
    with pytest.raises(InjectError) as caught:
        inject(novaclient_checkout, two_bugs)
    message = str(caught.value)
    assert "group-sep/inject.patch does not apply" in message
    assert "novaclient/utils.py:" in message  # git's own "patch failed: file:line"
    assert tree_digest(novaclient_checkout) == before, "the first bug must not be half-planted"


def test_apply_patches_is_all_or_none_when_a_later_patch_conflicts(novaclient_checkout, two_bugs, tmp_path):
    conflicting = tmp_path / "conflict.patch"
    conflicting.write_text(two_bugs[0].inject_patch.read_text())  # applies only once
    before = tree_digest(novaclient_checkout)
    with pytest.raises(InjectError, match="conflict.patch does not apply"):
        apply_patches(novaclient_checkout, [two_bugs[0].inject_patch, conflicting])
    assert tree_digest(novaclient_checkout) == before


def test_patching_a_hard_linked_copy_leaves_the_original_alone(novaclient_checkout, two_bugs, tmp_path):
    copy = tmp_path / "copy"
    copy_tree(novaclient_checkout, copy)
    original = novaclient_checkout / "novaclient" / "utils.py"
    assert original.stat().st_ino == (copy / "novaclient" / "utils.py").stat().st_ino
    apply_patches(copy, [two_bugs[0].inject_patch])
    assert CHOICE[1] in (copy / "novaclient" / "utils.py").read_text()
    assert CHOICE[1] not in original.read_text()


def test_is_applied_tells_present_from_absent(novaclient_checkout, two_bugs):
    assert is_applied(novaclient_checkout, two_bugs[0].inject_patch) is False
    inject(novaclient_checkout, two_bugs[:1])
    assert is_applied(novaclient_checkout, two_bugs[0].inject_patch) is True


def test_a_bug_for_another_release_or_project_is_refused(novaclient_checkout, two_bugs):
    pkg_info = novaclient_checkout / "PKG-INFO"
    pkg_info.write_text(pkg_info.read_text().replace("Version: 18.13.1", "Version: 18.14.0"))
    with pytest.raises(InjectError, match="written against python-novaclient 18.13.1, but .* holds python-novaclient 18.14.0"):
        inject(novaclient_checkout, two_bugs)
    pkg_info.write_text(pkg_info.read_text().replace("Name: python-novaclient", "Name: nova"))
    with pytest.raises(InjectError, match="is for python-novaclient, but .* holds nova"):
        inject(novaclient_checkout, two_bugs)


def test_student_work_is_refused_then_saved_as_a_patch_with_force(novaclient_checkout, two_bugs, tmp_path):
    gitrepo.commit_baseline(novaclient_checkout)
    shell = novaclient_checkout / "novaclient" / "shell.py"
    shell.write_text(shell.read_text() + "\n# my debugging notes\n")
    (novaclient_checkout / "notes.txt").write_text("breakpoint in servers.py line 80\n")
    before = tree_digest(novaclient_checkout)
    with pytest.raises(StudentWorkError, match="uncommitted work .*novaclient/shell.py.*--force"):
        inject(novaclient_checkout, two_bugs)
    assert tree_digest(novaclient_checkout) == before

    result = inject(novaclient_checkout, two_bugs, force=True, saved_dir=tmp_path / "saved")
    assert result.applied == ("choice-sep", "group-sep")
    saved = result.saved_work.read_text()
    assert "+# my debugging notes" in saved and "+breakpoint in servers.py line 80" in saved
    assert not (novaclient_checkout / "notes.txt").exists()
    # the saved patch brings the work back on the baseline: nothing was lost
    gitrepo.discard_work(novaclient_checkout)
    subprocess.run(["git", "-C", novaclient_checkout, "apply", result.saved_work], check=True)
    assert (novaclient_checkout / "notes.txt").read_text() == "breakpoint in servers.py line 80\n"
    assert shell.read_text().endswith("# my debugging notes\n")
