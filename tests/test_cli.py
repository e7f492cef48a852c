"""The command line: student-safe catalog views, clear errors, exit codes scripts can trust."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from debuglab.catalog.model import Catalog
from debuglab.lab.workspace import Workspace
from tests._util import DEBUGLAB


def debuglab(*args):
    """The real command, on a terminal wide enough that rich wraps no title."""
    return subprocess.run([DEBUGLAB, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})


def test_bugs_list_shows_every_bug(kit):
    result = debuglab("bugs", "list")
    assert result.returncode == 0
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        assert bug.id in result.stdout and bug.title in result.stdout


def test_bugs_show_tells_the_story_and_nothing_that_gives_it_away(kit):
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        result = debuglab("bugs", "show", bug.id)
        assert result.returncode == 0
        assert bug.title in result.stdout and bug.objectives[0] in result.stdout
        for secret in (*bug.hints, *bug.scope, *bug.test_ids, bug.feedback.fixed):
            assert secret not in result.stdout, secret


def test_an_unknown_bug_is_one_clear_line_and_exit_2():
    result = debuglab("bugs", "show", "no-such-bug")
    assert result.returncode == 2
    assert "error: unknown bug 'no-such-bug'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inject_into_a_folder_that_is_no_checkout_says_so(tmp_path):
    result = debuglab("inject", "--checkout", str(tmp_path))
    assert result.returncode == 2
    assert "no PKG-INFO" in result.stderr


def test_verify_without_a_lab_says_how_to_make_one(tmp_path):
    result = debuglab("bugs", "verify", "--lab", str(tmp_path / "nolab"))
    assert result.returncode == 2
    assert "no lab here" in result.stderr and "debuglab lab create" in result.stderr


def test_a_port_out_of_range_or_zero_is_exit_2_not_a_traceback(tmp_path):
    for port in ("70000", "0", "-1"):
        result = debuglab("cloud", "start", "--dir", str(tmp_path), "--port", port)
        assert result.returncode == 2, (port, result.stderr)
        assert port in result.stderr and "Traceback" not in result.stderr


def test_a_lab_dir_under_a_file_is_exit_2_naming_the_path(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = debuglab("lab", "create", "--dir", str(tmp_path / "afile" / "sub"), "--bugs", "num-instances-off-by-one")
    assert result.returncode == 2, result.stderr
    assert str(tmp_path / "afile") in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "afile").read_text() == "x"


def _in_mount_namespace(script: str) -> subprocess.CompletedProcess:
    """`script` (sh) in a mount namespace of its own: real mounts, gone afterwards (root only)."""
    import pytest

    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace here (needs root)")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "300"})


def test_a_lab_in_a_read_only_folder_or_on_an_empty_mount_point_is_exit_2(tmp_path):
    ro, mnt = tmp_path / "ro", tmp_path / "mnt"
    ro.mkdir()
    mnt.mkdir()
    result = _in_mount_namespace(f"mount -t tmpfs -o ro tmpfs {ro} && "
                                 f"{DEBUGLAB} lab create --dir {ro}/lab --bugs num-instances-off-by-one")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{ro}" in result.stderr and "Traceback" not in result.stderr
    result = _in_mount_namespace(f"mount -t tmpfs tmpfs {mnt} && "
                                 f"{DEBUGLAB} lab create --dir {mnt} --bugs num-instances-off-by-one; "
                                 f"echo mounted=$(mountpoint -q {mnt} && echo yes)")
    assert "mount point" in result.stderr and f"--dir {mnt}/lab" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "mounted=yes" in result.stdout  # it did not try to rmdir it


def test_with_a_lab_bugs_list_and_show_keep_to_the_bugs_planted_in_it(tmp_path, kit):
    """The same --dir as every student command; a lab's student sees its bugs."""
    planted = "num-instances-off-by-one"
    (tmp_path / "lab.toml").write_text(f'[lab]\nbugs = ["{planted}"]\n')
    others = [b for b in Catalog.load(kit.bugs_dir).bugs if b != planted]
    listed = debuglab("bugs", "list", "--dir", str(tmp_path))
    assert listed.returncode == 0 and planted in listed.stdout
    assert not [b for b in others if b in listed.stdout]
    assert debuglab("bugs", "show", planted, "--dir", str(tmp_path)).returncode == 0
    other = debuglab("bugs", "show", others[0], "--dir", str(tmp_path))
    assert other.returncode == 2 and f"is not planted in the lab {tmp_path}" in other.stderr


def test_bugs_sets_lists_the_sets_and_an_unknown_set_is_exit_2(tmp_path):
    listed = debuglab("bugs", "sets")
    assert listed.returncode == 0 and "session-90" in listed.stdout and "90 min" in listed.stdout
    unknown = debuglab("lab", "create", "--dir", str(tmp_path / "lab"), "--set", "session-45")
    assert unknown.returncode == 2 and "no bug set 'session-45'" in unknown.stderr and "session-90" in unknown.stderr
    both = debuglab("lab", "create", "--dir", str(tmp_path / "lab"), "--set", "session-90", "--bugs", "x")
    assert both.returncode == 2 and "not both" in both.stderr
    assert not (tmp_path / "lab").exists()


def test_bugs_show_prints_the_story_verbatim_brackets_included(kit):
    """A story's `[filter_scheduler]` is nova.conf, not rich markup: it must not vanish."""
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        if "[" in bug.symptom:
            shown = debuglab("bugs", "show", bug.id).stdout
            for line in (ln.strip() for ln in bug.symptom.splitlines() if "[" in ln):
                assert line in shown, (bug.id, line)


@pytest.mark.parametrize("value", ["", ",", " "])
def test_an_empty_bug_list_is_exit_2_not_the_whole_catalog(tmp_path, value):
    for args in (["lab", "create", "--dir", str(tmp_path / "lab")],
                 ["grade", "--patch", str(tmp_path / "none.patch")]):
        result = debuglab(*args, "--bugs", value)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"--bugs {value!r} names no bug" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "lab").exists()


@pytest.mark.slow
def test_lab_create_bugs_none_builds_a_lab_without_bugs(tmp_path, kit):
    root = tmp_path / "lab"
    result = debuglab("lab", "create", "--dir", str(root), "--bugs", "none")
    assert result.returncode == 0, result.stderr
    ws = Workspace.open(root)
    assert ws.bugs() == [] and all(entry["bugs"] == [] for entry in ws.info["projects"].values())
    for bug in Catalog.load(kit.bugs_dir).bugs.values():  # each bug's patch still applies: none is planted
        planted = subprocess.run(["git", "-C", ws.checkout(bug.project), "apply", "--check", bug.inject_patch],
                                 capture_output=True, text=True)
        assert planted.returncode == 0, (bug.id, planted.stderr)
    listed = debuglab("bugs", "list", "--dir", str(root))
    assert listed.returncode == 0 and not any(b in listed.stdout for b in Catalog.load(kit.bugs_dir).bugs)
    checked = debuglab("check", "--dir", str(root))
    assert checked.returncode == 2 and "no bug is planted" in checked.stderr, checked.stderr


def _printed_command(stdout: str, before: str, after: str = "") -> str:
    """The shell command printed between `before` and `after` on its line."""
    line = next(x for x in stdout.splitlines() if before in x)
    text = line.split(before, 1)[1]
    return text[: text.rindex(after)] if after else text


@pytest.mark.slow
def test_printed_commands_work_for_a_lab_whose_path_has_a_space_and_an_umlaut(tmp_path):
    root = tmp_path / "my lab ü"
    result = debuglab("lab", "create", "--dir", str(root), "--bugs", "none")
    assert result.returncode == 0, result.stderr
    activate = _printed_command(result.stdout, "(source ", ")")
    assert activate == shlex.quote(str(root / "venv" / "bin" / "activate")), result.stdout
    ran = subprocess.run(["bash", "-c", f"source {activate} && command -v python"], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.strip() == str(root / "venv" / "bin" / "python"), ran.stderr
    diff = _printed_command(result.stdout, "your change at any time: ")
    ran = subprocess.run(["bash", "-c", diff], capture_output=True, text=True)
    assert diff.startswith("git -C '") and ran.returncode == 0, (diff, ran.stderr)


@pytest.mark.parametrize("args, option", [
    (["grade", "--jobs", "-1"], "--jobs"),
    (["grade", "--jobs", "0"], "--jobs"),
    (["grade", "--timeout", "-5"], "--timeout"),
    (["grade", "--timeout", "0"], "--timeout"),
    (["check", "--timeout", "-1"], "--timeout"),
    (["bugs", "verify", "--jobs", "0"], "--jobs"),
    (["cloud", "start", "--timeout", "-5"], "--timeout"),
    (["cloud", "restart", "--timeout", "0"], "--timeout"),
    (["cloud", "start", "--debug-port", "70000"], "--debug-port"),
    (["cloud", "logs", "--lines", "0"], "--lines"),
    (["cloud", "logs", "-n", "-3"], "--lines"),
    (["attach", "--wait", "-1"], "--wait"),
    (["notebook", "start", "--timeout", "-1"], "--timeout"),
    (["notebook", "start", "--port", "0"], "--port"),
    (["notebook", "check", "--timeout", "0"], "--timeout"),
    (["up", "--notebook-port", "70000"], "--notebook-port"),
    (["class", "up", "--timeout", "-1"], "--timeout"),
    (["tunnel", "--port-offset", "-1", "student01"], "--port-offset"),
])
def test_a_number_out_of_range_is_exit_2_naming_the_option(tmp_path, args, option):
    from click.testing import CliRunner

    from debuglab.cli import main

    result = CliRunner().invoke(main, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert f"Invalid value for" in result.output and option in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "lab").exists()


def _run(*args):
    """The command in-process, as the CLI reports errors (one message, its exit code)."""
    from click.testing import CliRunner

    from debuglab.cli import main

    return CliRunner().invoke(main, list(args), env={"COLUMNS": "300"})


def test_a_lab_under_proc_is_named_as_no_place_for_a_lab():
    result = _run("lab", "create", "--dir", "/proc/lab", "--bugs", "none")
    assert result.exit_code == 2, result.output
    assert "cannot build the lab /proc/lab: /proc is not a place for a lab" in result.output, result.output
    assert "No such file or directory" not in result.output


def test_a_file_given_as_the_lab_is_named_a_file_not_a_lab_to_create(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = _run("cloud", "status", "--dir", str(tmp_path / "notes.txt"))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'notes.txt'} is a file, not a lab folder" in result.output, result.output
    assert "lab create" not in result.output


@pytest.mark.parametrize("args", [["bad section", "opt", "1"], ["filter_scheduler", "bad option", "1"],
                                  ["DEFAULT", "debug", "two\nlines"]])
def test_bad_cloud_config_set_input_is_exit_2(tmp_path, args):
    (tmp_path / "lab.toml").write_text("[lab]\nbugs = []\n")
    result = _run("cloud", "config", "set", "--dir", str(tmp_path), *args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and not (tmp_path / "local.conf").exists()


def test_cloud_start_help_says_the_default_ports_are_the_labs_own():
    for command in ("start", "restart"):
        result = _run("cloud", command, "--help")
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert "5000" not in text and "8774" not in text and "4444" not in text, text
        assert "the lab's own ports, see `cloud status`" in text, text


@pytest.mark.parametrize("env", [{}, {"TTY_INTERACTIVE": "0"}])
def test_without_a_terminal_tables_are_as_wide_as_their_content(kit, env):
    """In a pipe or a notebook cell the tables wrapped to 80 columns: titles one word per
    line, `python-novac…`. Without a terminal (and without COLUMNS) nothing is broken."""
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([DEBUGLAB, "bugs", "list"], capture_output=True, text=True, env={**environ, **env})
    assert out.returncode == 0, out.stderr
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        row = next(line for line in out.stdout.splitlines() if f" {bug.id} " in line)
        assert bug.title in row and bug.project in row, row
    narrow = subprocess.run([DEBUGLAB, "bugs", "list"], capture_output=True, text=True,
                            env={**environ, **env, "COLUMNS": "60"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60  # COLUMNS, when given, holds


def test_status_shows_the_whole_lab_and_exits_1_when_a_part_is_down(tmp_path):
    """Three students typed `debuglab status` first and got "No such command"."""
    from debuglab.lab import gitrepo, port_registry

    root = tmp_path / "lab"
    checkout = root / "stack" / "nova"
    (checkout / "nova").mkdir(parents=True)
    (checkout / "nova" / "api.py").write_text("limit = 10\n")
    baseline = gitrepo.commit_baseline(checkout)
    (checkout / "nova" / "api.py").write_text("limit = 11\n")  # a change of one line
    (checkout / "nova" / "notes.py").write_text("# mine\n")  # and a new file
    ports = port_registry.allocate(root)
    (root / "lab.toml").write_text(
        '[lab]\nbugs = ["num-instances-off-by-one"]\n'
        f'[projects.nova]\npath = "stack/nova"\nversion = "34.0.0"\nbaseline_commit = "{baseline}"\n'
        'bugs = ["num-instances-off-by-one"]\n'
        "[ports]\n" + "".join(f'"{name}" = {port}\n' for name, port in ports.items()))
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # rows unbroken
    out = subprocess.run([DEBUGLAB, "status", "--dir", root], capture_output=True, text=True, env=environ)
    assert out.returncode == 1, out.stdout + out.stderr  # nothing runs
    assert "1 bug(s) planted" in out.stdout
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") >= 3}
    assert "down" in rows["cloud: n-api"] and f"127.0.0.1:{ports['nova']}" in rows["cloud: n-api"]
    assert "down" in rows["JupyterLab"] and f"127.0.0.1:{ports['jupyterlab']}" in rows["JupyterLab"]
    assert f"127.0.0.1:{ports['remote-pdb']}" in rows["debugger"]
    assert "2 files changed, 2 insertions(+), 1 deletion(-)" in rows["your change: nova"]
    assert "part(s) down" in out.stderr and "debuglab up" in out.stderr
