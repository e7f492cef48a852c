"""`debuglab reproduce ID`: a bug's reproduce script, run as its notebook runs it, against
the lab's running cloud; BUG_SEEN decides the exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from debuglab.cloud import config, supervisor
from debuglab.core import processes
from tests._util import DEBUGLAB

pytestmark = pytest.mark.slow
BUG = "num-instances-off-by-one"


@pytest.fixture(scope="module")
def running(lab_under_test):
    ws = lab_under_test
    supervisor.stop(ws)
    supervisor.start(ws, ports=processes.free_ports(list(config.DEFAULT_PORTS)))
    yield ws
    supervisor.stop(ws)


def reproduce(ws, bug_id: str, kit_root: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    if kit_root:
        env["DEBUGLAB_KIT"] = str(kit_root)
    return subprocess.run([DEBUGLAB, "reproduce", bug_id, "--dir", ws.root], capture_output=True, text=True,
                          env=env, timeout=600)


def with_script(kit_copy, text: str) -> Path:
    scripts = kit_copy.root / "labs" / "reproduce"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / f"{BUG}.py").write_text(text)
    return kit_copy.root


@pytest.mark.parametrize("script, code, words", [
    # the prelude's names are there, as in the notebook: the admin client reaches the cloud
    ("print('flavors:', len(nova.flavors.list()), LAB.name)\nBUG_SEEN = True\n", 1, "the cloud shows the bug"),
    ("print('flavors:', len(nova.flavors.list()))\nBUG_SEEN = False\n", 0, "the cloud behaves right"),
    ("print('looked, but said nothing')\n", 3, "did not set BUG_SEEN"),
    ("BUG_SEEN = 'yes'\n", 3, "did not set BUG_SEEN to True or False"),
    ("raise RuntimeError('the script broke')\nBUG_SEEN = True\n", 3, "the script failed before it could tell"),
])
def test_bug_seen_decides_the_exit_code_and_nothing_else_does(running, kit_copy, script, code, words):
    result = reproduce(running, BUG, with_script(kit_copy, script))
    assert result.returncode == code, result.stdout + result.stderr
    assert words in result.stdout, result.stdout
    if "flavors:" in script:
        assert "flavors: " in result.stdout and f"lab: {running.root}" in result.stdout


def test_a_bug_without_a_script_or_a_stopped_cloud_is_a_clear_error(running, kit_copy, tmp_path):
    (kit_copy.root / "labs" / "reproduce").mkdir(parents=True, exist_ok=True)
    result = reproduce(running, BUG, kit_copy.root)
    assert result.returncode == 2 and "has no reproduce script" in result.stderr, result.stderr
    supervisor.stop(running)
    try:
        result = reproduce(running, BUG)
        assert result.returncode == 2 and "is not running" in result.stderr and "cloud start" in result.stderr
    finally:
        supervisor.start(running, ports=processes.free_ports(list(config.DEFAULT_PORTS)))


def test_a_first_run_that_changes_the_config_says_the_cloud_was_restarted(running):
    """The script sets an option and restarts the cloud itself: its output must not tell the
    student to restart (`debuglab cloud config set`'s own message), but say it was done."""
    from debuglab.cloud import localconf
    from debuglab.cloud.config import CloudPaths

    paths = CloudPaths(running)
    localconf.set_option(paths.local_conf, "nova", "filter_scheduler", "enabled_filters", None)
    if "AggregateMultiTenancyIsolation" in (paths.etc / "nova.conf").read_text():  # a first run: the cloud lacks it
        supervisor.restart(running)
    result = reproduce(running, "scheduler-stale-aggregate-host")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "cloud restart" not in result.stdout and "loads it at" not in result.stdout, result.stdout
    assert "[filter_scheduler] enabled_filters = ComputeFilter,AggregateMultiTenancyIsolation (set in local.conf; " \
        "the cloud was restarted to load it)" in result.stdout, result.stdout
