"""JupyterLab as a service of the lab (debuglab.notebooks.jupyterlab, `debuglab notebook
start|stop|status|url`), against real JupyterLab processes: the lifecycle, the token, the
port in use named, no process left behind; `debuglab up` twice; and (slow) the welcome
notebook opened in headless Chromium (Debian's, driven by playwright) with its first cell
run on the `debuglab` kernel.

Set DEBUGLAB_TEST_LAB=/path/to/lab to run the slow tests against an existing lab, and
DEBUGLAB_TEST_ARTIFACTS=/some/dir to keep the browser test's screenshot there (else it is
in the test's tmp dir; the test prints where).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from debuglab.cloud import config, supervisor
from debuglab.core import processes
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, jupyterlab
from tests._util import DEBUGLAB, ROOT
from tests.test_cloud import free_ports
from tests.test_notebooks import ANSI, fake_lab, get

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def debuglab(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """The real command, as a user runs it (wide, so rich does not wrap the URL)."""
    env = {**os.environ, "COLUMNS": "400", **env}
    result = subprocess.run([str(DEBUGLAB), *args], capture_output=True, text=True, timeout=timeout, env=env)
    result.stdout, result.stderr = ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)
    return result


def lab_processes(ws: Workspace) -> list[int]:
    """Every live process started for this lab's JupyterLab, found without the kit's helpers:
    the server and its kernels all carry DEBUGLAB_LAB=<lab> in their environment."""
    marker = f"{content.LAB_ENV}={ws.root}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state not in ("Z", "X"):
            found.append(int(entry))
    return found


@contextmanager
def chromium_page():
    """A page of Debian's headless Chromium (playwright drives it; no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


def printed_url(out: str) -> str:
    match = re.search(r"open (http://127\.0\.0\.1:\d+/lab/tree/01-welcome\.ipynb\?token=\S+)\s*$", out)
    assert match, f"the output does not end with the URL to open:\n{out}"
    return match.group(1)


def start_kernel(base: str, token: str) -> dict:
    req = urllib.request.Request(f"{base}/api/kernels", data=b'{"name": "debuglab"}', method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


# --------------------------------------------------------------------------- token, pidfile


def test_the_token_is_made_once_private_and_kept(tmp_path):
    ws = fake_lab(tmp_path)
    token = jupyterlab.lab_token(ws)
    path = ws.root / "jupyter" / "token"
    assert len(token) >= 32 and path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jupyterlab.lab_token(ws) == token
    path.chmod(0o644)  # loosened by hand: tightened again, the token kept
    path.write_text(token + "\n")  # an editor's newline: JupyterLab would read it as part of the token
    assert jupyterlab.lab_token(ws) == token and path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jupyterlab.lab_token(fake_lab(tmp_path / "other")) != token


def test_a_pidfile_of_another_process_is_stale(tmp_path):
    ws = fake_lab(tmp_path)
    (ws.root / "jupyter").mkdir()
    pidfile = jupyterlab.pidfile(ws)
    pidfile.write_text(json.dumps({"pid": os.getpid(), "port": 1, "root_dir": "x", "started": 0}))
    assert jupyterlab.read_state(ws) is None  # alive, but not this lab's JupyterLab
    assert not pidfile.exists()
    result = debuglab("notebook", "status", "--dir", str(ws.root))
    assert result.returncode == 1 and "stopped" in result.stdout
    result = debuglab("notebook", "url", "--dir", str(ws.root))
    assert result.returncode == 1 and "not running" in result.stderr and "notebook start" in result.stderr
    result = debuglab("notebook", "stop", "--dir", str(ws.root))
    assert result.returncode == 0 and "was not running" in result.stdout


# --------------------------------------------------------------------------- the lifecycle


def test_start_status_url_stop_against_a_real_jupyterlab(tmp_path):
    ws = fake_lab(tmp_path)
    port, other = free_ports(2)
    base = f"http://127.0.0.1:{port}"
    personal = tmp_path / "dot-jupyter"  # a user's own config (and token) that would open the server to all
    personal.mkdir()
    (personal / "jupyter_server_config.py").write_text("c.ServerApp.ip = '0.0.0.0'\nc.IdentityProvider.token = ''\n")
    try:
        started = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(port),
                           JUPYTER_CONFIG_DIR=str(personal), JUPYTER_TOKEN="not-the-lab-token")
        assert started.returncode == 0, started.stdout + started.stderr
        url = printed_url(started.stdout)
        token = (ws.root / "jupyter" / "token").read_text()
        assert url == f"{base}/lab/tree/01-welcome.ipynb?token={token}"
        assert f"ssh -N -L {port}:127.0.0.1:{port} " in started.stdout

        # it serves labs/ with the lab's kernel, to the token only, on loopback only
        state = jupyterlab.read_state(ws)
        assert state is not None and state.port == port
        # the lab's own copy of the notebooks, not the kit's labs/
        assert state.root_dir == str(ws.root / "notebooks") and (ws.root / "notebooks" / content.WELCOME).is_file()
        assert get(url)[0] == 200
        assert get(f"{base}/api/contents")[0] == 403
        specs = json.loads(get(f"{base}/api/kernelspecs?token={token}")[1])
        assert specs["default"] == "debuglab" and specs["kernelspecs"]["debuglab"]["spec"]["argv"][0] == str(ws.python)
        listening = {addr for socks in processes.listeners().values() for addr, p in socks if p == port}
        assert listening == {"127.0.0.1"}
        assert token.encode() not in Path(f"/proc/{state.pid}/cmdline").read_bytes()  # not in `ps`
        for private in (ws.root / "jupyter" / "token", jupyterlab.log_path(ws)):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        assert token not in jupyterlab.log_path(ws).read_text()
        runtime = ws.root / "jupyter" / "runtime"  # jpserver-*-open.html was 0644 in 0755
        for folder in (ws.root / "jupyter", runtime):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        holders = [f for f in runtime.iterdir() if f.is_file() and token in f.read_text(errors="replace")]
        assert any(f.name.endswith("-open.html") for f in holders), sorted(runtime.iterdir())
        for holder in holders:
            assert stat.S_IMODE(holder.stat().st_mode) == 0o600, holder

        status = debuglab("notebook", "status", "--dir", str(ws.root))
        assert status.returncode == 0 and "running" in status.stdout and str(state.pid) in status.stdout
        again = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(other))
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"already runs for {ws.root} (pid {state.pid}, port {port})" in again.stderr
        assert processes.port_free(other) and jupyterlab.read_state(ws).pid == state.pid
        shown = debuglab("notebook", "url", "--dir", str(ws.root))
        assert shown.returncode == 0 and shown.stdout == url + "\n"

        kernel = start_kernel(base, token)
        kernel_pid = next(p for p in lab_processes(ws)
                          if f"kernel-{kernel['id']}.json".encode() in Path(f"/proc/{p}/cmdline").read_bytes())
        for _ in range(20):  # the two scans agree once no short-lived helper process is starting or ending
            before, found = set(lab_processes(ws)), set(jupyterlab.processes(state))
            if before == found:
                break
            time.sleep(0.5)
        assert {state.pid, kernel_pid} <= before and found == before, (before, found)
    finally:
        stopped = debuglab("notebook", "stop", "--dir", str(ws.root))
    assert stopped.returncode == 0 and f"stopped (pid {state.pid})" in stopped.stdout
    assert lab_processes(ws) == [], "JupyterLab or its kernel outlived `debuglab notebook stop`"
    assert processes.port_free(port) and not jupyterlab.pidfile(ws).exists()
    assert not (ws.root / "jupyter" / "runtime" / f"kernel-{kernel['id']}.json").exists()

    # started again without --port: the same port and the same token
    try:
        restarted = debuglab("notebook", "start", "--dir", str(ws.root))
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert printed_url(restarted.stdout) == url
    finally:
        debuglab("notebook", "stop", "--dir", str(ws.root))
    assert lab_processes(ws) == []


def test_a_port_in_use_is_named_with_the_program_holding_it(tmp_path):
    ws = fake_lab(tmp_path)
    [port] = free_ports(1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(port))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 (JupyterLab) is in use" in result.stderr
    assert f"held by pid {os.getpid()}" in result.stderr and "--port" in result.stderr
    assert not jupyterlab.pidfile(ws).exists() and lab_processes(ws) == []


def test_a_jupyterlab_that_dies_while_starting_is_reported_with_its_log(tmp_path):
    ws = fake_lab(tmp_path)
    [port] = free_ports(1)
    config = ws.root / "jupyter" / "config"  # the lab's own JupyterLab config, broken
    config.mkdir(parents=True)
    (config / "jupyter_server_config.py").write_text("c.ServerApp.certfile = '/nonexistent/cert.pem'\n")
    result = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(port))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "JupyterLab exited (code 1) while starting" in result.stderr
    assert 'certfile "/nonexistent/cert.pem" does not exist' in result.stderr
    assert not jupyterlab.pidfile(ws).exists() and lab_processes(ws) == [] and processes.port_free(port)


def test_the_options_go_after_the_subcommand(tmp_path):
    ws = fake_lab(tmp_path)
    result = debuglab("notebook", "--dir", str(ws.root), "start")
    assert result.returncode == 2 and "put --dir after the subcommand" in result.stderr
    assert lab_processes(ws) == []


# --------------------------------------------------------------------------- `debuglab up`


@pytest.fixture(scope="module")
def lab_with_cloud(lab_under_test):
    """The lab with its cloud running on free ports (so `up` finds it running); its
    JupyterLab and cloud stopped at the end."""
    ws = lab_under_test
    jupyterlab.stop(ws)
    supervisor.stop(ws)
    keys = list(config.DEFAULT_PORTS)
    supervisor.start(ws, ports=dict(zip(keys, free_ports(len(keys)))))
    yield ws
    jupyterlab.stop(ws)
    supervisor.stop(ws)


@pytest.mark.slow
def test_up_starts_jupyterlab_ends_with_the_url_and_twice_is_the_same(lab_with_cloud):
    ws = lab_with_cloud
    [port] = free_ports(1)
    cloud_pids = supervisor.read_state(ws).pids
    first = debuglab("up", "--dir", str(ws.root), "--notebook-port", str(port))
    assert first.returncode == 0, first.stdout + first.stderr
    url = printed_url(first.stdout)  # the last line
    state = jupyterlab.read_state(ws)
    assert state is not None and url == jupyterlab.url(ws, port)
    assert get(url)[0] == 200
    assert f"ssh -N -L {port}:127.0.0.1:{port} " in first.stdout and "debuglab tunnel" in first.stdout
    second = debuglab("up", "--dir", str(ws.root))
    assert second.returncode == 0, second.stdout + second.stderr
    assert printed_url(second.stdout) == url
    assert jupyterlab.read_state(ws).pid == state.pid and supervisor.read_state(ws).pids == cloud_pids
    assert len([p for p in lab_processes(ws) if b"jupyter-lab" in Path(f"/proc/{p}/cmdline").read_bytes()]) == 1


# --------------------------------------------------------------------------- in a real browser


@pytest.fixture
def screenshot_path(tmp_path, request) -> Path:
    folder = Path(os.environ.get("DEBUGLAB_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{request.node.name}.png"
    request.node.user_properties.append(("screenshot", str(path)))
    return path


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (Debian: apt-get install chromium)")
def test_welcome_notebook_runs_its_first_cell_in_headless_chromium(lab_under_test, screenshot_path, capsys):
    from playwright.sync_api import expect

    ws = lab_under_test
    [port] = free_ports(1)
    welcome = ROOT / "labs" / content.WELCOME
    committed = welcome.read_bytes()
    checkpoints = (ROOT / "labs" / ".ipynb_checkpoints").exists()
    jupyterlab.stop(ws)
    started = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    url = printed_url(started.stdout)
    try:
        with chromium_page() as page:
            try:
                page.goto(url)
                kernel = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").first
                expect(kernel).to_have_text(content.KERNEL_DISPLAY, timeout=120_000)
                expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first) \
                    .to_be_attached(timeout=120_000)
                first = page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell").first
                first.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
                shown = first.locator(".jp-OutputArea-output")
                expect(shown).to_contain_text(f"lab: {ws.root}", timeout=120_000)
                expect(shown).to_contain_text(f"nova checkout: {ws.checkout('nova')}")
                expect(first.locator(".jp-InputPrompt")).to_contain_text("[1]")
                text = shown.inner_text()
            finally:
                page.screenshot(path=str(screenshot_path), full_page=True)
                with capsys.disabled():
                    print(f"\nscreenshot of JupyterLab: {screenshot_path}")
        # the cell ran on the lab's kernel: the server's session for the notebook is `debuglab`
        token = (ws.root / "jupyter" / "token").read_text()
        sessions = json.loads(get(f"http://127.0.0.1:{port}/api/sessions?token={token}")[1])
        assert [s["kernel"]["name"] for s in sessions if s["path"] == content.WELCOME] == ["debuglab"]
        assert "Traceback" not in text and "Error" not in text, text
    finally:
        debuglab("notebook", "stop", "--dir", str(ws.root))
        if welcome.read_bytes() != committed:  # JupyterLab autosaved it: the kit's copy stays as committed
            welcome.write_bytes(committed)
        if not checkpoints:
            shutil.rmtree(ROOT / "labs" / ".ipynb_checkpoints", ignore_errors=True)
    assert lab_processes(ws) == [], "JupyterLab or its kernel outlived `debuglab notebook stop`"
    assert screenshot_path.stat().st_size > 10_000


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (Debian: apt-get install chromium)")
def test_a_storys_shell_session_renders_line_for_line_in_jupyterlab(lab_under_test):
    """Every other line of a story's shell session came out shifted right by four spaces:
    JupyterLab read the text between two `$` prompts of an indented block as math. The
    rendered lines must be the story's own."""
    from playwright.sync_api import expect

    ws = lab_under_test
    bug = Catalog.load(ROOT / "bugs").bugs["rescue-stuck-task-state"]
    wanted = [line[4:] for line in bug.symptom.splitlines() if line.startswith("    $")]
    [port] = free_ports(1)
    jupyterlab.stop(ws)
    started = debuglab("notebook", "start", "--dir", str(ws.root), "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    token = (ws.root / "jupyter" / "token").read_text()
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/lab/tree/bugs/{bug.id}.ipynb?token={token}")
            story = page.locator(".jp-RenderedMarkdown", has_text="A user reports").first
            expect(story.locator("pre").first).to_be_visible(timeout=120_000)
            rendered = "\n".join(pre.inner_text() for pre in story.locator("pre").all()).splitlines()
    finally:
        debuglab("notebook", "stop", "--dir", str(ws.root))
    prompts = [line for line in rendered if line.lstrip().startswith("$")]
    assert prompts == wanted, rendered  # each command as the story writes it, none shifted
