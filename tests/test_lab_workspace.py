"""The lab workspace, built for real from the pinned sdists and the lock (warm cache)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from debuglab.core.kit import cache_dir
from debuglab.lab import gitrepo, workspace
from debuglab.lab.errors import UpstreamError, WorkspaceError
from debuglab.lab.inject import is_applied
from tests._util import DEBUGLAB

pytestmark = pytest.mark.slow


def git(checkout, *args):
    return subprocess.run(["git", "-C", checkout, *args], capture_output=True, text=True, check=True).stdout


def test_the_lab_is_devstack_shaped_with_one_baseline_commit_holding_the_bugs(lab, kit):
    catalog = Catalog.load(kit.bugs_dir)
    info = lab.info
    assert info["lab"]["bugs"] == list(catalog.bugs)
    for name, version in (("nova", "34.0.0"), ("python-novaclient", "18.13.1")):
        checkout = lab.checkout(name)
        assert checkout == lab.root / "stack" / name
        assert info["projects"][name]["version"] == version
        assert git(checkout, "rev-list", "HEAD").split() == [lab.baseline_commit(name)]
        assert git(checkout, "status", "--porcelain") == "", "git diff shows only the student's change"
        assert "debuglab" not in git(checkout, "log", "--format=%B").replace("debuglab@", "")
    for bug in catalog.bugs.values():
        assert is_applied(lab.checkout(bug.project), bug.inject_patch), bug.id
        assert bug.id in info["projects"][bug.project]["bugs"]


def test_the_student_workspace_holds_no_hidden_tests_solutions_or_scope(lab, kit):
    names = {p.name for p in lab.root.rglob("*") if "venv" not in p.parts}
    assert not names & {"test_hidden.py", "bug.toml", "fix.patch", "alternative.patch", "writeup.md", "debuglab_hidden"}
    assert "[tests]" not in (lab.root / "lab.toml").read_text()


def test_the_venv_runs_nova_from_the_checkout_with_compiled_bytecode(lab):
    out = subprocess.run(
        [lab.python, "-c", "import nova, novaclient, remote_pdb, debugpy, pydevd_pycharm, sqlalchemy, stestr;"
         "print(nova.__file__); print(novaclient.__file__); print(sqlalchemy.__version__)"],
        capture_output=True, text=True, check=True, env={**os.environ, "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"},
    ).stdout.split()
    assert out[0] == str(lab.checkout("nova") / "nova" / "__init__.py")
    assert out[1] == str(lab.checkout("python-novaclient") / "novaclient" / "__init__.py")
    assert tuple(int(x) for x in out[2].split(".")[:2]) < (2, 1), "nova's tests need SQLAlchemy < 2.1"
    site = next((lab.venv / "lib").glob("python3*/site-packages"))
    assert list((site / "oslo_config").glob("__pycache__/*.pyc"))
    assert list((lab.checkout("nova") / "nova" / "compute").glob("__pycache__/api.*.pyc"))
    assert not (site / "__editable__.nova-34.0.0.pth").read_text().startswith("/"), "the lab can move"


def test_a_folder_holding_other_files_is_refused_and_untouched(tmp_path):
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "thesis.tex").write_text("mine")
    with pytest.raises(WorkspaceError, match=r"exists and holds other files \(thesis.tex\)"):
        workspace.create(tmp_path / "lab", [])
    assert [p.name for p in (tmp_path / "lab").iterdir()] == ["thesis.tex"]


def test_an_existing_lab_is_rebuilt_only_with_force(lab):
    with pytest.raises(WorkspaceError, match="already a lab; `debuglab lab create --force`"):
        workspace.create(lab.root, [])


def test_a_hash_mismatch_leaves_no_workspace_and_no_temporary_tree(tmp_path, kit_copy):
    lock = kit_copy.upstream_lock
    lock.write_text(lock.read_text().replace("a9fe15f894ffb6b3", "b9fe15f894ffb6b3"))
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir() / "sdists", cache / "sdists")
    with pytest.raises(UpstreamError, match="python_novaclient-18.13.1.tar.gz: sha256 a9fe15f894ffb6b3"):
        workspace.create(tmp_path / "labs" / "lab", [], kit=kit_copy, cache=cache)
    assert list((tmp_path / "labs").iterdir()) == []


def fake_old_lab(root: Path) -> Path:
    """A lab whose student has uncommitted work in stack/nova."""
    checkout = root / "stack" / "nova"
    (checkout / "nova").mkdir(parents=True)
    (checkout / "nova" / "api.py").write_text("limit = 10\n")
    gitrepo.commit_baseline(checkout)
    (checkout / "nova" / "api.py").write_text("limit = 11  # my fix\n")
    (root / "lab.toml").write_text('[lab]\nbugs = []\n')
    return root


def test_force_saves_commits_uncommitted_and_untracked_work_and_files_at_the_lab_root(tmp_path, kit, lab):
    """After `git commit -am fix`, plus local.conf and mynotes.md, --force kept
    only the uncommitted diff. Each kind must come back from saved-work/."""
    old = fake_old_lab(tmp_path / "lab")
    checkout = old / "stack" / "nova"
    baseline = git(checkout, "rev-parse", "HEAD").strip()
    ident = ["-c", "user.email=s@lab", "-c", "user.name=student"]
    git(checkout, *ident, "commit", "-qam", "my committed fix")  # limit = 11 is now committed
    (checkout / "nova" / "api.py").write_text("limit = 12  # and more\n")  # uncommitted, on top
    (checkout / "nova" / "new_helper.py").write_text("HELP = 1\n")  # untracked
    (old / "local.conf").write_text("[[post-config|$NOVA_CONF]]\n[DEFAULT]\ndebug = True\n")
    (old / "mynotes.md").write_text("the bug is in the API\n")
    again = tmp_path / "again"  # the baseline, to bring the work back onto
    subprocess.run(["git", "clone", "-q", str(checkout), str(again)], check=True)
    git(again, "checkout", "-q", baseline)
    built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", "num-instances-off-by-one"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    saved = workspace.Workspace.open(old).saved_work
    commits = list(saved.glob("*-nova-commits/*.patch"))
    work = list(saved.glob("*-nova.patch"))
    files = list(saved.glob("*-lab-files"))
    assert len(commits) == 1 and len(work) == 1 and len(files) == 1, sorted(saved.rglob("*"))
    assert str(saved) in built.stderr  # it says where
    # each kind comes back: the commit with `git am`, then the rest with `git apply`
    git(again, *ident, "am", "-q", str(commits[0]))
    assert (again / "nova" / "api.py").read_text() == "limit = 11  # my fix\n"
    assert git(again, "log", "-1", "--format=%s").strip() == "my committed fix"
    git(again, "apply", str(work[0]))
    assert (again / "nova" / "api.py").read_text() == "limit = 12  # and more\n"
    assert (again / "nova" / "new_helper.py").read_text() == "HELP = 1\n"
    assert (files[0] / "mynotes.md").read_text() == "the bug is in the API\n"
    assert "debug = True" in (files[0] / "local.conf").read_text()


def _halfway(tmp_path: Path, old: Path) -> subprocess.Popen:
    """`lab create --force` on `old`, stopped once it is installing the new venv."""
    child = subprocess.Popen([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", "num-instances-off-by-one"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".lab.building-*/venv")):  # halfway: installing the venv
        assert time.monotonic() < deadline and child.poll() is None, child.stdout.read()
        time.sleep(0.1)
    time.sleep(1)  # uv is running now
    return child


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_term_halfway_keeps_the_old_lab_and_leaves_nothing_behind(tmp_path, signum, code):
    old = fake_old_lab(tmp_path / "lab")
    before = sorted(str(p.relative_to(old)) for p in old.rglob("*"))
    child = _halfway(tmp_path, old)
    build = next(tmp_path.glob(".lab.building-*"))
    child.send_signal(signum)
    output = child.communicate(timeout=60)[0].decode()
    assert child.returncode == code, output
    assert "interrupted" in output
    assert sorted(str(p.relative_to(old)) for p in old.rglob("*")) == before
    assert (old / "stack" / "nova" / "nova" / "api.py").read_text() == "limit = 11  # my fix\n"
    assert [p.name for p in tmp_path.iterdir()] == ["lab"]
    # no child of the build (uv installing into it) runs on without its parent
    users = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
             if str(build).encode() in _cmdline(pid)]
    assert users == [], users


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_build_killed_outright_is_cleaned_up_by_the_next_run(tmp_path):
    old = fake_old_lab(tmp_path / "lab")
    child = _halfway(tmp_path, old)
    child.kill()
    child.communicate(timeout=60)
    leftover = next(tmp_path.glob(".lab.building-*"))
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):  # what SIGKILL leaves running (uv)
        if str(leftover).encode() in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    refused = subprocess.run([DEBUGLAB, "lab", "create", "--dir", old, "--bugs", "num-instances-off-by-one"],
                             capture_output=True, text=True)
    assert refused.returncode == 2  # a lab is there: refused, and still the leftover is gone
    assert not leftover.exists(), "the next run left the dead build's folder"
    assert [p.name for p in tmp_path.iterdir()] == ["lab"]


def no_network() -> list[str]:
    """A command prefix that runs its command with no network but loopback (root only)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a network namespace here (needs root)")
    return ["unshare", "-n"]


def test_a_rebuild_needs_no_network_and_saves_student_work_then_inject_rebaselines(tmp_path, kit, lab):
    # `lab` made sure the cache is warm
    old = fake_old_lab(tmp_path / "lab")
    bugs = list(Catalog.load(kit.bugs_dir).bugs.values())
    nova_bugs = [b for b in bugs if b.project == "nova"]
    built = subprocess.run([*no_network(), DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", nova_bugs[0].id],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "saved earlier work" in built.stdout
    ws = workspace.Workspace.open(old)
    saved = list(ws.saved_work.glob("*-nova.patch"))
    assert len(saved) == 1 and "+limit = 11  # my fix" in saved[0].read_text()
    assert ws.bugs() == [nova_bugs[0].id]
    first_baseline = ws.baseline_commit("nova")

    # planting a second bug through the CLI makes a new one-commit baseline
    out = subprocess.run([DEBUGLAB, "inject", nova_bugs[1].id, "--checkout", ws.checkout("nova")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and f"planted 1 bug(s): {nova_bugs[1].id}" in out.stdout, out.stdout + out.stderr
    info = tomllib.loads((ws.root / "lab.toml").read_text())
    assert info["projects"]["nova"]["bugs"] == sorted([nova_bugs[0].id, nova_bugs[1].id])
    assert info["projects"]["nova"]["baseline_commit"] != first_baseline
    assert git(ws.checkout("nova"), "rev-list", "HEAD").split() == [info["projects"]["nova"]["baseline_commit"]]
    assert git(ws.checkout("nova"), "status", "--porcelain") == ""
    again = subprocess.run([DEBUGLAB, "inject", nova_bugs[1].id, "--checkout", ws.checkout("nova")],
                           capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_failed_build_names_the_lab_not_its_temporary_folder(tmp_path, kit_copy):
    """Errors named `.lab.building-PID`, a folder the user never made."""
    patch = kit_copy.bugs_dir / "num-instances-off-by-one" / "inject.patch"
    patch.write_text(patch.read_text().replace("max_instances", "max_instancez", 1))  # context that is not there
    result = subprocess.run([DEBUGLAB, "lab", "create", "--dir", tmp_path / "lab", "--bugs", "num-instances-off-by-one"],
                            capture_output=True, text=True, env={**os.environ, "DEBUGLAB_KIT": str(kit_copy.root)})
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'lab'}/stack/nova" in result.stderr and ".building" not in result.stderr, result.stderr
    assert not (tmp_path / "lab").exists() and not list(tmp_path.glob(".lab.*"))


def test_labs_built_at_once_find_uv_from_every_thread():
    """`bugs verify --live` builds its labs in threads; uv's finder reads sysconfig, whose
    first use is not thread-safe. In a fresh interpreter, 16 threads ask at once."""
    race = ("import threading\n"
            "from debuglab.core.kit import uv_bin\n"
            "found = []\n"
            "def ask():\n"
            "    try:\n"
            "        found.append(uv_bin())\n"
            "    except Exception as exc:\n"
            "        found.append(repr(exc))\n"
            "threads = [threading.Thread(target=ask) for _ in range(16)]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "print('\\n'.join(found))\n")
    for _ in range(5):
        found = subprocess.run([sys.executable, "-c", race], capture_output=True, text=True,
                               check=True, timeout=60).stdout.split("\n")[:-1]
        assert len(found) == 16 and len(set(found)) == 1 and Path(found[0]).is_file(), found


def test_force_saves_other_branches_tags_and_every_stash_entry(tmp_path):
    """--force kept HEAD's commits and the working tree, and lost the rest: a commit made on
    another branch, one reachable only from a tag, and git stash entries. Each comes back
    from the saved bundle (and each stash entry from its own patch), by name."""
    old = fake_old_lab(tmp_path / "lab")
    checkout = old / "stack" / "nova"
    ident = ["-c", "user.email=s@lab", "-c", "user.name=student"]
    start = git(checkout, "rev-parse", "--abbrev-ref", "HEAD").strip()
    git(checkout, "stash")  # the uncommitted fix goes to the stash: entry 1 (stash@{1} once the next comes)
    (checkout / "nova" / "scratch.py").write_text("probe = True\n")
    git(checkout, "stash", "push", "--include-untracked", "-m", "a probe")  # entry 0, untracked file included
    git(checkout, "checkout", "-q", "-b", "experiment")
    (checkout / "nova" / "api.py").write_text("limit = 20  # on a branch\n")
    git(checkout, *ident, "commit", "-qam", "try on a branch")
    git(checkout, "checkout", "-q", "--detach", start)
    (checkout / "nova" / "api.py").write_text("limit = 30  # tagged only\n")
    git(checkout, *ident, "commit", "-qam", "tagged idea")
    git(checkout, "tag", "idea")
    git(checkout, "checkout", "-q", start)
    back = tmp_path / "back"  # the baseline alone, as a lab built again with the same bugs has it
    subprocess.run(["git", "clone", "-q", "--single-branch", "--no-tags", str(checkout), str(back)], check=True)
    built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", "num-instances-off-by-one"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    saved = workspace.Workspace.open(old).saved_work
    (bundle,) = saved.glob("*-nova-refs.bundle")
    (names,) = saved.glob("*-nova-refs.txt")
    listed = names.read_text()
    assert "refs/heads/experiment " in listed and "refs/tags/idea " in listed and "a probe" in listed
    git(back, "fetch", "-q", str(bundle), "refs/*:refs/saved/*")
    assert git(back, "show", "saved/heads/experiment:nova/api.py") == "limit = 20  # on a branch\n"
    assert git(back, "show", "saved/tags/idea:nova/api.py") == "limit = 30  # tagged only\n"
    stashes = sorted(saved.glob("*-nova-stash-*.patch"))
    assert len(stashes) == 2
    assert "+probe = True" in stashes[0].read_text()  # stash@{0}, with its untracked file
    assert "+limit = 11  # my fix" in stashes[1].read_text()


def test_a_second_force_never_follows_a_link_the_first_one_saved(tmp_path):
    """The first --force saved the student's `etc-link` (to /etc) as a link; the second
    copied /etc through it into saved-work/, then failed with a raw Python list."""
    old = fake_old_lab(tmp_path / "lab")
    (old / "etc-link").symlink_to("/etc")
    for _ in range(2):
        built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs",
                                "num-instances-off-by-one"], capture_output=True, text=True)
        assert built.returncode == 0, built.stdout + built.stderr
    links = list(workspace.Workspace.open(old).saved_work.rglob("etc-link"))
    assert links and all(link.is_symlink() and str(link.readlink()) == "/etc" for link in links), links
    assert not list(workspace.Workspace.open(old).saved_work.rglob("passwd"))  # nothing of /etc was copied


def test_a_fifo_or_a_socket_in_the_lab_is_passed_over_not_a_disk_full_error(tmp_path):
    """A FIFO at the lab's root made --force fail with "check free disk space"."""
    import socket

    old = fake_old_lab(tmp_path / "lab")
    os.mkfifo(old / "pipe")
    (old / "notes").mkdir()
    (old / "notes" / "todo.md").write_text("find the bug\n")
    os.mkfifo(old / "notes" / "another-pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(old / "notes" / "a.sock"))
    built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", "num-instances-off-by-one"],
                           capture_output=True, text=True, timeout=600)
    sock.close()
    assert built.returncode == 0, built.stdout + built.stderr
    (files,) = workspace.Workspace.open(old).saved_work.glob("*-lab-files")
    assert (files / "notes" / "todo.md").read_text() == "find the bug\n"
    assert not (files / "pipe").exists() and not (files / "notes" / "another-pipe").exists()


def test_force_keeps_jupyterlabs_token_so_the_address_the_student_opened_still_works(tmp_path):
    """After --force JupyterLab got a new token and the old URL answered 403."""
    old = fake_old_lab(tmp_path / "lab")
    (old / "jupyter").mkdir(mode=0o700)
    (old / "jupyter" / "token").write_text("the-students-token")
    built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", old, "--bugs", "num-instances-off-by-one"],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    from debuglab.notebooks import jupyterlab

    ws = workspace.Workspace.open(old)
    assert jupyterlab.lab_token(ws) == "the-students-token"
    assert (ws.root / "jupyter" / "token").stat().st_mode & 0o077 == 0
