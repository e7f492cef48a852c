"""Helpers the tests share (fixtures are in conftest.py): the kit's root, the `debuglab`
command of this venv, and small builders of patches, bugs and stand-in hosts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from debuglab.lab import workspace

if TYPE_CHECKING:
    from debuglab.notebooks.devstack import DevstackSite

ROOT = Path(__file__).resolve().parents[1]
DEBUGLAB = Path(sys.executable).with_name("debuglab")
NOVACLIENT_BUG_TOML = '''
id = "{id}"
title = "Server names come out upper-cased"
project = "python-novaclient"
upstream = "18.13.1"
difficulty = 1
layer = "client"
symptom = "nova list shows every server name in capitals."
objectives = ["read a client-side formatter"]
techniques = ["pdb"]
hints = ["look at the client", "look at the utils", "look at one function"]
scope = ["{path}"]
spoilers = ["upper()", "capitalize"]
[feedback]
fixed = "Fixed."
not_fixed = "Not yet."
[tests]
fail_to_pass = ["novaclient.tests.unit.debuglab_hidden.test_{module}.T.test_a"]
pass_to_pass = ["novaclient.tests.unit.test_utils.FindResourceTestCase.test_find_by_integer_id"]
'''


def make_patch(checkout: Path, path: str, old: str, new: str) -> str:
    """A git-format diff replacing the first `old` with `new` in checkout/path."""
    import difflib

    before = (checkout / path).read_text()
    assert old in before, f"{old!r} not in {path}"
    after = before.replace(old, new, 1)
    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}")
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def write_novaclient_bug(bugs_dir: Path, bug_id: str, checkout: Path, old: str, new: str,
                         path: str = "novaclient/utils.py") -> Path:
    folder = bugs_dir / bug_id
    folder.mkdir(parents=True)
    module = bug_id.replace("-", "_")
    (folder / "bug.toml").write_text(NOVACLIENT_BUG_TOML.format(id=bug_id, path=path, module=module))
    (folder / "inject.patch").write_text(make_patch(checkout, path, old, new))
    (folder / "test_hidden.py").write_text("import testtools\n\nclass T(testtools.TestCase):\n    def test_a(self):\n        pass\n")
    return folder


def stand_in_devstack(ws: workspace.Workspace, folder: Path, **settings) -> "DevstackSite":
    """A DevStack host made of a lab, for the DevStack notebooks: `folder/stack/nova` is the
    lab's checkout, DevStack's python is the lab venv's, DevStack's clouds.yaml the lab's
    (it has the same `devstack-admin` cloud), the nova units the default ones. systemd and
    journald cannot run here: the tests pass `restart_command`, `journal_command` (and
    whatever else differs) that leave a trace or stand in for them. Its site file is written."""
    from debuglab.notebooks.devstack import DevstackSite
    from debuglab.provision.inventory import DEFAULT_SERVICES

    stack = folder / "stack"
    stack.mkdir()
    (stack / "nova").symlink_to(ws.checkout("nova"))
    site = DevstackSite(**{"stack_dir": stack, "python": ws.python, "services": tuple(DEFAULT_SERVICES.items()),
                           "restart_command": "false {units}", "journal_command": "false {unit}",
                           "clouds_yaml": ws.root / "clouds.yaml", "nova_conf": ws.root / "cloud" / "etc" / "nova.conf",
                           "config_command": "false {section} {option} {value}", **settings})
    site.write()
    return site
