"""A `lab` host provisioned over real SSH (Debian's sshd in a network namespace of its own,
tests/sshhosts.py): debuglab installed on the host from the uploaded kit and wheelhouse,
the workspace built there by the host's own `debuglab lab create`, the mini-cloud and
JupyterLab started on the host's loopback, then a second run that changes nothing.

The namespace host has no route anywhere (one veth to us): every package it installs
must come from the uploaded wheelhouse. It shares this machine's filesystem, but its
HOME (and so its debuglab cache, ~/.cache/debuglab) is its own and starts empty.

Slow (a cold install of two venvs on the host): one host, provisioned twice in one
module fixture, and every assertion reads that fixture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from debuglab.cli import _Group
from debuglab.provision import commands

sys.path.insert(0, str(Path(__file__).parent))
import sshhosts  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (sshhosts.sshd_available() and sshhosts.netns_available()),
                       reason="needs openssh-server and network namespaces (root, iproute2)"),
    pytest.mark.skipif(not Path(sshhosts.DEVSTACK_PYTHON).is_file(),
                       reason=f"needs the Python 3.11.5+ the lab host runs: {sshhosts.DEVSTACK_PYTHON}"),
]

cli = _Group("debuglab", commands={c.name: c for c in commands.COMMANDS})
BUGS = ["num-instances-off-by-one"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


host_run = sshhosts.host_run


@pytest.fixture(scope="module")
def labhost(tmp_path_factory, kit):
    root = tmp_path_factory.mktemp("labhost")
    # the kit as it is now, frozen: the bundle's hash must not move between the two runs
    frozen = sshhosts.frozen_kit(kit.root, root / "kit")
    with sshhosts.SshHosts(root / "hosts", 1) as ssh, pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEBUGLAB_KIT", str(frozen))
        host = ssh.hosts[0]
        inv = root / "class.toml"
        inv.write_text(sshhosts.lab_inventory([host], ssh.known_hosts, ssh.user_key, BUGS, ["labby"]))
        venv = host.home / "debuglab-venv"
        try:
            pidfile = host.home / "lab/cloud/cloud.pid"
            first = invoke("provision", inv)
            pids_first = pidfile.read_text() if pidfile.is_file() else None
            second = invoke("provision", inv)
            (root / "outputs.txt").write_text(first.output + "\n\n" + second.output)
            pids_second = pidfile.read_text() if pidfile.is_file() else None
            yield {"ssh": ssh, "host": host, "inv": inv, "first": first, "second": second, "kit": frozen,
                   "pids": (pids_first, pids_second), "venv": venv, "lab": host.home / "lab"}
        finally:
            for what in ("notebook", "cloud"):
                if (venv / "bin" / "debuglab").exists():
                    host_run(host, [str(venv / "bin" / "debuglab"), what, "stop", "--dir", str(host.home / "lab")],
                             timeout=120)


def test_first_run_installs_debuglab_and_starts_the_cloud(labhost):
    result = labhost["first"]
    assert result.exit_code == 0, result.output
    assert "1/1 host(s) ready" in result.output
    host, venv, lab = labhost["host"], labhost["venv"], labhost["lab"]
    # debuglab runs on the host from its own venv, editable from the uploaded kit
    out = host_run(host, [str(venv / "bin" / "python"), "-c",
                          "import debuglab, sys; print(debuglab.__file__); print(sys.version_info[:2])"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(host.home / "debuglab-kit/src/debuglab/__init__.py")
    # the host's own lab create built the workspace, from the host's Python (not ours)
    info = (lab / "lab.toml").read_text()
    assert "num-instances-off-by-one" in info and "nova" in info
    assert os.path.realpath(lab / "venv/bin/python") == os.path.realpath(sshhosts.DEVSTACK_PYTHON)
    # the host's cache was filled from the wheelhouse only (the namespace reaches no index)
    assert (host.home / ".cache/debuglab/sdists/nova-34.0.0.tar.gz").is_file()
    assert (host.home / "debuglab-wheelhouse/.wheelhouse-sha256").is_file()
    # the mini-cloud answers on the host's loopback: a real token and nova's flavors,
    # read with the host's clouds.yaml from inside its namespace
    script = ("import openstack.config, keystoneauth1.session as s, novaclient.client as c\n"
              "from keystoneauth1 import loading\n"
              "import yaml; cloud = yaml.safe_load(open('clouds.yaml'))['clouds']['devstack']\n"
              "auth = loading.get_plugin_loader('password').load_from_options(**cloud['auth'])\n"
              "nova = c.Client('2.1', session=s.Session(auth=auth))\n"
              "print(sorted(f.name for f in nova.flavors.list()))\n")
    out = host_run(host, [str(lab / "venv/bin/python"), "-c", script], cwd=lab, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "m1.tiny" in out.stdout
    # ... and on loopback only: from our side, the host's address refuses nova's port
    with pytest.raises(OSError):
        socket.create_connection((host.address, 8774), timeout=3).close()
    # the result names the endpoints for this student
    assert "http://127.0.0.1:8774/v2.1" in result.output and "labby" in result.output


def test_second_run_changes_nothing_and_finds_the_cloud_running(labhost):
    result = labhost["second"]
    assert result.exit_code == 0, result.output
    assert "labby (nothing to do)" in result.output
    assert "labby (kit uploaded, wheelhouse uploaded, debuglab installed, lab built, cloud started, " \
           "JupyterLab started)" in labhost["first"].output
    first, second = labhost["pids"]
    assert first is not None and first == second  # the same cloud processes: found running
    assert "http://127.0.0.1:8774/v2.1" in result.output


def test_jupyterlab_answers_through_the_tunnel(labhost):
    """JupyterLab runs on the host's loopback with a token; `debuglab tunnel` brings it
    here through a real SSH forward, and the URL the provisioning printed opens it."""
    import re
    import urllib.error
    import urllib.request

    host = labhost["host"]
    first = labhost["first"].output.replace("\n", "")
    match = re.search(r"JupyterLab (http://127\.0\.0\.1:(\d+)/lab/tree/\S+\?token=[\w-]+)", first)
    assert match, first
    url, port = match[1], int(match[2])
    assert port == 8888
    with pytest.raises(OSError):  # loopback only: not on the host's address
        socket.create_connection((host.address, port), timeout=3).close()
    result = invoke("tunnel", "labby", "-i", labhost["inv"], "--port-offset", "21000")
    assert result.exit_code == 0, result.output
    assert "-L 127.0.0.1:29888:127.0.0.1:8888" in result.output
    assert "-L 127.0.0.1:25444:127.0.0.1:4444" in result.output  # the mini-cloud's remote-pdb
    from debuglab.provision import inventory, tunnel

    t = tunnel.tunnel(inventory.load(labhost["inv"]), "labby", offset=21000)
    ssh = subprocess.Popen(list(t.argv), stderr=subprocess.PIPE)
    here = url.replace(f"127.0.0.1:{port}/", "127.0.0.1:29888/")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(here, timeout=10) as page:
                    body = page.read().decode()
                    status = page.status
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and ssh.poll() is None, ssh.stderr.read() if ssh.poll() else "no forward"
                time.sleep(0.3)
        assert status == 200 and "JupyterLab" in body
        token = url.split("token=")[1]
        api = "http://127.0.0.1:29888/api/contents"
        with urllib.request.urlopen(urllib.request.Request(api, headers={"Authorization": f"token {token}"})) as page:
            names = {item["name"] for item in json.load(page)["content"]}
        assert "01-welcome.ipynb" in names  # the kit's labs/, deployed with the kit
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no notebooks
            urllib.request.urlopen(api, timeout=10)
        assert refused.value.code == 403
    finally:
        ssh.terminate()
        ssh.wait(5)


def test_a_python_too_old_for_the_wheelhouse_is_named(labhost, tmp_path):
    """Debian 12's /usr/bin/python3 is 3.11.2; the kit's soupsieve asks for >=3.11.5."""
    if not Path("/usr/bin/python3").is_file():
        pytest.skip("no /usr/bin/python3")
    version = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True).stdout.strip()
    inv = tmp_path / "class.toml"
    inv.write_text(labhost["inv"].read_text().replace(sshhosts.DEVSTACK_PYTHON, "/usr/bin/python3"))
    result = invoke("provision", inv, "--dry-run")
    from debuglab.provision import wheelhouse

    too_old = [spec for _, spec in wheelhouse.build().requires_python
               if not __import__("packaging.specifiers").specifiers.SpecifierSet(spec).contains(version)]
    if too_old:
        assert result.exit_code == 1 and f"Python {version} is too old" in result.output, result.output
    else:
        assert result.exit_code == 0, result.output


def test_a_new_kit_keeps_the_notebooks_a_student_saved(labhost):
    """JupyterLab serves the kit's labs/; a kit upload must not lose a student's notebook."""
    host, frozen = labhost["host"], labhost["kit"]
    welcome = host.home / "debuglab-kit/labs/01-welcome.ipynb"
    welcome.write_text(welcome.read_text().replace('"cells": [', '"cells": [{"cell_type": "markdown", '
                                                   '"id": "mine", "metadata": {}, "source": ["my notes"]},', 1))
    readme = frozen / "README.md"
    readme.write_text(readme.read_text() + "\nA change of the kit.\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEBUGLAB_KIT", str(frozen))
        result = invoke("provision", labhost["inv"])
    assert result.exit_code == 0, result.output
    assert "labby (kit uploaded)" in result.output  # nothing else: no rebuild, no restart
    [saved] = (host.home / "debuglab-kit-saved-notebooks").iterdir()
    assert "my notes" in (saved / "01-welcome.ipynb").read_text()
    assert "my notes" not in welcome.read_text()  # the kit's own notebook is back


def test_collect_from_a_lab_host(labhost, tmp_path):
    lab = labhost["lab"]
    (lab / "stack/nova/nova/new_file.py").write_text("X = 1\n")
    try:
        result = invoke("collect", labhost["inv"], "--dest", tmp_path / "subs")
        assert result.exit_code == 0, result.output
        assert "nova/new_file.py" in (tmp_path / "subs/labby/nova.patch").read_text()
        assert (tmp_path / "subs/labby/python-novaclient.patch").read_text() == ""
    finally:
        (lab / "stack/nova/nova/new_file.py").unlink()
