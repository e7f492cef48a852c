"""Provisioning, collect, reset and tunnel over real SSH: Debian's OpenSSH servers started
here, one per network namespace (see tests/sshhosts.py), host and user keys generated
here, host keys checked against a known_hosts written here.

The hosts are DevStack-shaped: `~/opt/stack/nova` is the pinned nova sdist with a git
history of two commits, `~/opt/stack/data/venv` a Python venv standing in for DevStack's.
These hosts have no systemd, so the inventory's restart command appends the units it is
given to `~/restarts.log`: the tests read which units a real run would restart there.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from debuglab.catalog.model import Catalog
from debuglab.cli import _Group
from debuglab.core.kit import cache_dir
from debuglab.lab import upstream
from debuglab.provision import commands, tunnel
from debuglab.provision import inventory as inventory_mod

sys.path.insert(0, str(Path(__file__).parent))
import sshhosts  # noqa: E402

from tests.test_notebooks import get  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sshhosts.sshd_available(), reason="needs openssh-server (sshd) and ssh-keygen"),
]

cli = _Group("debuglab", commands={c.name: c for c in commands.COMMANDS})


def invoke(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, projects):
    """Four DevStack-shaped hosts: 0 and 1 are provisioned by the tests in order;
    2 is used for failures next to a good host; 3 for host keys and the lab profile."""
    root = tmp_path_factory.mktemp("ssh")
    nova = projects["nova"]
    template = sshhosts.devstack_template(root / "template", upstream.fetch(nova, cache_dir()), nova)
    with sshhosts.SshHosts(root / "hosts", 4, use_netns=sshhosts.netns_available(),
                           env={"DEBUGLAB_CACHE": str(cache_dir())}) as lab:
        for host in lab.hosts:
            sshhosts.install_devstack(template, host.home)
        lab.template = template
        yield lab


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", checkout, *args], check=True,
                          capture_output=True, text=True).stdout


def git_dir(repository: Path, *args) -> str:
    """git on a repository without its work tree (DevStack's, set aside)."""
    return subprocess.run(["git", "-c", "safe.directory=*", "--git-dir", repository, *map(str, args)], check=True,
                          capture_output=True, text=True).stdout


def write_inventory(path: Path, lab, hosts, **kw) -> Path:
    path.write_text(sshhosts.devstack_inventory(hosts, lab.known_hosts, lab.user_key, **kw))
    return path


@pytest.fixture(scope="module")
def provisioned(hosts, tmp_path_factory, kit):
    """Hosts 0 and 1 provisioned once through the CLI (first run, then the same again)."""
    inv = write_inventory(tmp_path_factory.mktemp("class") / "class.toml", hosts, hosts.hosts[:2])
    start = time.monotonic()
    first = invoke("provision", inv)
    first_s = time.monotonic() - start
    start = time.monotonic()
    second = invoke("provision", inv)
    second_s = time.monotonic() - start
    return {"inv": inv, "first": first, "second": second, "first_s": first_s, "second_s": second_s}


def test_provision_devstack_hosts(provisioned, hosts, kit):
    result = provisioned["first"]
    assert result.exit_code == 0, result.output
    assert "2/2 host(s) ready" in result.output
    bugs = [b for b in Catalog.load(kit.bugs_dir).bugs.values() if b.project == "nova"]
    template_head = git(hosts.template / "stack" / "nova", "rev-parse", "HEAD")
    for host in hosts.hosts[:2]:
        nova = host.home / "opt" / "stack" / "nova"
        original = host.home / "opt" / "stack" / ".debuglab" / "original" / "nova.git"
        # the student's baseline: one commit, clean, every bug planted
        assert git(nova, "log", "--format=%s").splitlines() == ["Lab baseline"]
        assert git(nova, "status", "--porcelain") == ""
        for bug in bugs:
            check = subprocess.run(["git", "apply", "--check", "--reverse", bug.inject_patch], cwd=nova,
                                   capture_output=True, text=True)
            assert check.returncode == 0, f"{bug.id} not planted: {check.stderr}"
        # DevStack's own repository kept aside, untouched: same history, same HEAD, and its
        # index still matches DevStack's files exactly
        assert git_dir(original, "rev-parse", "HEAD") == template_head
        assert len(git_dir(original, "log", "--format=%H").splitlines()) == 2
        assert git_dir(original, "--work-tree", hosts.template / "stack" / "nova", "status", "--porcelain") == ""
        # the files stayed where DevStack installed them: its build files are still there,
        # and are no part of the student's baseline
        assert (nova / "nova.egg-info" / "PKG-INFO").is_file()
        assert "nova.egg-info/PKG-INFO" not in git(nova, "ls-files")
        # remote-pdb on loopback, a fixed port per unit
        dropin = host.home / "etc/systemd/system/devstack@n-sch.service.d/debuglab.conf"
        text = dropin.read_text()
        assert "Environment=PYTHONBREAKPOINT=remote_pdb.set_trace" in text
        assert "Environment=REMOTE_PDB_HOST=127.0.0.1" in text
        assert "Environment=REMOTE_PDB_PORT=4448" in text
        # the units restarted once, all of them (recorded: no systemd here)
        restarts = (host.home / "restarts.log").read_text().splitlines()
        assert restarts == [" ".join(inventory_mod.DEFAULT_SERVICES)]
        # the debugger tools are importable from DevStack's Python
        venv_python = host.home / "opt/stack/data/venv/bin/python"
        subprocess.run([venv_python, "-c", "import remote_pdb, debugpy, pydevd_pycharm"], check=True)


def test_second_run_changes_nothing(provisioned, hosts):
    result = provisioned["second"]
    assert result.exit_code == 0, result.output
    assert result.output.count("(unchanged)") == 2
    for host in hosts.hosts[:2]:
        assert len((host.home / "restarts.log").read_text().splitlines()) == 1


def test_devstack_jupyterlab_runs_devstack_python(provisioned, hosts, tmp_path):
    """JupyterLab on a DevStack host: on its loopback only, with a 0600 token, reached
    through `debuglab tunnel`; its kernel is DevStack's python, which imports the
    student's /opt/stack/nova and sees the units, their ports and the journal command."""
    host = hosts.hosts[0]
    stack = host.home / "opt" / "stack"
    devstack_python = stack / "data" / "venv" / "bin" / "python"
    site = (stack / ".debuglab" / "site.toml").read_text()
    assert f'python = "{devstack_python}"' in site and '"devstack@n-sch" = 4448' in site
    # DevStack's iniset, from this host's own devstack checkout, on the nova.conf the units read
    assert f"{stack}/devstack/inc/ini-config && iniset -sudo" in site and "/etc/nova/nova.conf {section}" in site
    spec = json.loads((stack / ".debuglab/jupyter/kernels/debuglab-devstack/kernel.json").read_text())
    assert spec["argv"][0] == str(devstack_python)
    assert spec["env"]["DEBUGLAB_UNITS"].startswith("devstack@n-api=4444,")
    token_file = stack / ".debuglab" / "jupyter" / "token"
    assert token_file.stat().st_mode & 0o077 == 0
    token = token_file.read_text()
    assert "JupyterLab :8888" in provisioned["first"].output
    if host.netns is None:
        pytest.skip("needs a network namespace: the host's loopback must differ from ours")
    # not on the host's network address: loopback only
    with pytest.raises(OSError):
        socket.create_connection((host.address, 8888), timeout=3).close()
    t = tunnel.tunnel(inventory_mod.load(provisioned["inv"]), "student0", offset=21000)
    ssh = subprocess.Popen(list(t.argv), stderr=subprocess.PIPE)
    try:
        base = "http://127.0.0.1:29888"
        deadline = time.monotonic() + 15
        while (status := get(f"{base}/api/kernelspecs?token={token}")[0]) == 0:  # 0: no forward yet
            assert time.monotonic() < deadline, "no forward to JupyterLab"
            time.sleep(0.2)
        assert status == 200
        assert get(f"{base}/api/kernelspecs")[0] == 403  # no token, no answer
        assert get(f"{base}/api/contents/01-welcome.ipynb?token={token}")[0] == 200  # labs/devstack/ is served
    finally:
        ssh.terminate()
        ssh.wait(5)
    # a notebook on that kernel, run on the host as the student's JupyterLab runs it
    nb = host.home / "probe.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "debuglab-devstack", "display_name": "d", "language": "python"}}, "cells": [
        {"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [], "execution_count": None, "source":
         "import os, sys, nova, subprocess\nprint('PY', sys.executable)\nprint('NOVA', nova.__file__)\n"
         "print('UNITS', os.environ['DEBUGLAB_UNITS'])\n"
         "print('J', subprocess.run(os.environ['DEBUGLAB_JOURNAL'].format(unit='devstack@n-api', lines=1),"
         " shell=True, capture_output=True, text=True).stdout)"}]}))
    (host.home / "journal").mkdir(exist_ok=True)  # journald cannot run here: the test's journal command reads this
    (host.home / "journal" / "devstack@n-api.log").write_text("first\nINFO nova.api.openstack.wsgi last line\n")
    venv_python = host.home / "debuglab-venv" / "bin" / "python"
    run = sshhosts.host_run(host, [str(venv_python), "-c",
                            "import sys, json; from debuglab.notebooks import headless; from debuglab.notebooks.devstack import DevstackSite;"
                            f"nb = headless.run(DevstackSite.open({str(stack)!r}), {str(nb)!r});"
                            "print(json.dumps(headless.output(nb.cells[0])))"], timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert f"PY {devstack_python}" in out
    assert f"NOVA {stack / 'nova' / 'nova' / '__init__.py'}" in out
    assert "devstack@n-sch=4448" in out
    assert "J INFO nova.api.openstack.wsgi last line" in out
    # the instructor's commands on the host: the URL with the token, and a check before class
    debuglab = str(host.home / "debuglab-venv" / "bin" / "debuglab")
    url = sshhosts.host_run(host, [debuglab, "notebook", "url", "--devstack", str(stack)], timeout=60)
    assert url.stdout.strip() == f"http://127.0.0.1:8888/lab/tree/01-welcome.ipynb?token={token}", url.stdout + url.stderr
    check = sshhosts.host_run(host, [debuglab, "notebook", "check", "--devstack", str(stack), str(nb)], timeout=180)
    assert check.returncode == 0 and "ok" in check.stdout, check.stdout + check.stderr
    broken = json.loads(nb.read_text())
    broken["cells"][0]["source"] = "import nova.no_such_module"
    nb.write_text(json.dumps(broken))
    check = sshhosts.host_run(host, [debuglab, "notebook", "check", "--devstack", str(stack), str(nb)], timeout=180)
    assert check.returncode == 1 and "no_such_module" in check.stdout + check.stderr, check.stdout + check.stderr


def test_collect_reads_work_without_touching_the_index(provisioned, hosts, tmp_path):
    nova = hosts.hosts[0].home / "opt/stack/nova"
    (nova / "nova/scheduler/filters/num_instances_filter.py").write_text(
        (nova / "nova/scheduler/filters/num_instances_filter.py").read_text() + "\n# my fix\n")
    (nova / "nova/my_notes.py").write_text("NOTES = 1\n")
    (nova / "README.rst").write_text("staged change\n")
    git(nova, "add", "README.rst")
    index_before = git(nova, "diff", "--cached", "--name-only")
    result = invoke("collect", provisioned["inv"], "--dest", tmp_path / "submissions")
    assert result.exit_code == 0, result.output
    patch = (tmp_path / "submissions/student0/nova.patch").read_text()
    assert "+# my fix" in patch and "nova/my_notes.py" in patch and "+staged change" in patch
    assert git(nova, "diff", "--cached", "--name-only") == index_before == "README.rst\n"
    assert (tmp_path / "submissions/student1/nova.patch").read_text() == ""  # nothing done yet
    record = (tmp_path / "submissions/student0/submission.toml").read_text()
    assert git(nova, "rev-parse", "HEAD").strip() in record
    # the submission applies to the baseline: the grader can rebuild the student's tree
    scratch = tmp_path / "scratch"
    shutil.copytree(nova, scratch, symlinks=True)
    git(scratch, "reset", "-q", "--hard")
    git(scratch, "clean", "-fdq")
    git(scratch, "apply", str(tmp_path / "submissions/student0/nova.patch"))
    assert (scratch / "nova/my_notes.py").read_text() == "NOTES = 1\n"


def test_reset_one_bug_then_all_saving_the_work(provisioned, hosts, tmp_path, kit):
    host = hosts.hosts[1]
    nova = host.home / "opt/stack/nova"
    bug = Catalog.load(kit.bugs_dir).select(["num-instances-off-by-one"])[0]
    in_scope, other = nova / bug.scope[0], nova / "nova/compute/api.py"
    in_scope.write_text(in_scope.read_text() + "\n# scope edit\n")
    other.write_text(other.read_text() + "\n# other edit\n")
    restarts = len((host.home / "restarts.log").read_text().splitlines())

    result = invoke("reset", "student1", "-i", provisioned["inv"], "--bug", bug.id, "--saved-dir", tmp_path / "saved")
    assert result.exit_code == 0, result.output
    assert "# scope edit" not in in_scope.read_text()  # back to the baseline
    assert "# other edit" in other.read_text()  # untouched: another bug's work
    [local] = (tmp_path / "saved/student1").glob("*.patch")
    assert "+# scope edit" in local.read_text() and "+# other edit" in local.read_text()
    [remote] = (host.home / "opt/stack/.debuglab/saved-work").glob("*.patch")
    assert remote.read_text() == local.read_text()
    assert len((host.home / "restarts.log").read_text().splitlines()) == restarts + 1

    result = invoke("reset", host.spec.split("@")[1], "-i", provisioned["inv"], "--saved-dir", tmp_path / "saved")
    assert result.exit_code == 0, result.output
    assert git(nova, "status", "--porcelain") == ""
    assert len(list((tmp_path / "saved/student1").glob("*.patch"))) == 2

    result = invoke("reset", "student1", "-i", provisioned["inv"], "--saved-dir", tmp_path / "saved")
    assert "nothing to reset" in result.output


def test_new_bug_set_saves_work_and_rebaselines(provisioned, hosts, tmp_path, kit):
    host = hosts.hosts[1]
    nova = host.home / "opt/stack/nova"
    (nova / "nova/wip.py").write_text("WIP = True\n")
    inv = write_inventory(tmp_path / "class.toml", hosts, [host])
    result = invoke("provision", inv, "--bugs", "image-min-disk-units")
    assert result.exit_code == 0, result.output
    saved = list((host.home / "opt/stack/.debuglab/saved-work").glob("*-nova.patch"))
    assert len(saved) == 1 and "WIP = True" in saved[0].read_text()
    assert git(nova, "log", "--format=%s").splitlines() == ["Lab baseline"]
    assert not (nova / "nova/wip.py").exists()
    planted = Catalog.load(kit.bugs_dir).select(["image-min-disk-units", "num-instances-off-by-one"])
    assert subprocess.run(["git", "apply", "--check", "--reverse", planted[0].inject_patch], cwd=nova).returncode == 0
    assert subprocess.run(["git", "apply", "--check", planted[1].inject_patch], cwd=nova,
                          capture_output=True).returncode == 0  # no longer planted
    original = host.home / "opt/stack/.debuglab/original/nova.git"
    assert git_dir(original, "--work-tree", hosts.template / "stack" / "nova", "status", "--porcelain") == ""
    assert (nova / "nova.egg-info" / "PKG-INFO").is_file()  # DevStack's build files survive a re-baseline


def test_bad_hosts_fail_alone(hosts, tmp_path):
    good, bad = hosts.hosts[2], hosts.hosts[3]
    (bad.home / "oldpython").write_text("#!/bin/sh\necho 3.8.10\n")  # an interpreter too old
    (bad.home / "oldpython").chmod(0o755)
    refused = f"root@{good.address}:2222"  # nothing listens there
    extra = (f'\n[[host]]\naddress = "{bad.spec}"\nprofile = "devstack"\nstudent = "old"\n'
             'python = "~/oldpython"\nmin_free_gb = 1000000\n'
             f'\n[[host]]\naddress = "{refused}"\nprofile = "devstack"\nstudent = "gone"\n')
    inv = write_inventory(tmp_path / "class.toml", hosts, [good], extra_hosts=extra)
    result = invoke("provision", inv)
    assert result.exit_code == 1, result.output
    assert "1/3 host(s) ready" in result.output
    assert "Python 3.8.10" in result.output and "3.11 or newer" in result.output
    assert "GB free, 1e+06 GB needed" in result.output
    assert "connection refused" in result.output
    assert git(good.home / "opt/stack/nova", "log", "--format=%s").strip() == "Lab baseline"


def test_host_keys_user_keys_and_upstream_version(hosts, tmp_path):
    host = hosts.hosts[3]
    known = tmp_path / "known_hosts"
    inv = tmp_path / "class.toml"
    inv.write_text(sshhosts.devstack_inventory([host], known, hosts.user_key))

    result = invoke("provision", inv, "--dry-run")  # no known_hosts at all
    assert result.exit_code == 1 and "unknown host key" in result.output and "--accept-new-host-keys" in result.output
    assert not known.exists()

    result = invoke("provision", inv, "--dry-run", "--accept-new-host-keys")
    assert result.exit_code == 0, result.output
    assert known.read_text().split() == [host.known_hosts_name, *host.host_pub.split()]

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    known.write_text(f"{host.known_hosts_name} {other.with_suffix('.pub').read_text().split()[0]} "
                     f"{other.with_suffix('.pub').read_text().split()[1]}\n")
    result = invoke("provision", inv, "--dry-run", "--accept-new-host-keys")
    assert result.exit_code == 1 and "has CHANGED" in result.output

    inv.write_text(sshhosts.devstack_inventory([host], hosts.known_hosts, other))  # a key the host refuses
    result = invoke("provision", inv, "--dry-run")
    assert result.exit_code == 1 and "refused the key" in result.output

    pkg_info = host.home / "opt/stack/nova/PKG-INFO"
    saved = pkg_info.read_text()
    pkg_info.write_text(saved.replace("Version: 34.0.0", "Version: 33.0.0", 1))
    try:
        inv.write_text(sshhosts.devstack_inventory([host], hosts.known_hosts, hosts.user_key))
        result = invoke("provision", inv, "--dry-run")
        assert result.exit_code == 1 and "holds nova 33.0.0" in result.output
    finally:
        pkg_info.write_text(saved)
    result = invoke("provision", inv, "--dry-run")
    assert result.exit_code == 0 and "kit" in result.output


def _serve_once(argv_prefix: list[str], port: int, reply: bytes) -> subprocess.Popen:
    """A one-shot TCP server on 127.0.0.1:port inside the host's namespace."""
    code = ("import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {port})); s.listen(1); print('ready', flush=True)\n"
            f"c, _ = s.accept(); c.sendall({reply!r}); c.close()\n")
    proc = subprocess.Popen([*argv_prefix, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_tunnel_forwards_over_real_ssh(hosts, tmp_path):
    host = hosts.hosts[0]
    if host.netns is None:
        pytest.skip("needs a network namespace: the host's loopback must differ from ours")
    inv = write_inventory(tmp_path / "class.toml", hosts, [host])
    result = invoke("tunnel", "student0", "-i", inv, "--port-offset", "20000")
    assert result.exit_code == 0, result.output
    assert "-L 127.0.0.1:24448:127.0.0.1:4448" in result.output  # n-sch's remote-pdb
    assert "-R 127.0.0.1:12345:127.0.0.1:32345" in result.output  # PyCharm, reversed
    t = tunnel.tunnel(inventory_mod.load(inv), "student0", offset=20000)
    server = _serve_once(host.exec_argv([]), 4448, b"(Pdb) ")
    here = socket.socket()
    here.bind(("127.0.0.1", 32345))
    here.listen(1)
    ssh = subprocess.Popen(list(t.argv), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:  # forward: our 24448 reaches the host's own 127.0.0.1:4448
            try:
                with socket.create_connection(("127.0.0.1", 24448), timeout=2) as c:
                    data = c.recv(16)
                    if data:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no forward"
            time.sleep(0.2)
        assert data == b"(Pdb) "
        # reverse: the host's 127.0.0.1:12345 reaches our PyCharm debug server on 32345
        got = {}
        threading.Thread(target=lambda: got.update(conn=here.accept()), daemon=True).start()
        probe = subprocess.run(host.exec_argv([sys.executable, "-c",
                               "import socket; socket.create_connection(('127.0.0.1', 12345), timeout=5).sendall(b'hi')"]),
                               capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        deadline = time.monotonic() + 5
        while "conn" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got["conn"][0].recv(2) == b"hi"
    finally:
        ssh.terminate()
        ssh.wait(5)
        server.kill()
        server.wait()
        here.close()
