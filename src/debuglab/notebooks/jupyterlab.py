"""JupyterLab as a background service of the lab, like the mini-cloud: `labs/` served on
127.0.0.1 with the lab's `debuglab` kernel, one token kept in the lab, a pidfile, a log.

On a DevStack host (`--devstack STACK_DIR`) the same server serves `labs/devstack/` with
the `debuglab-devstack` kernel (debuglab.notebooks.devstack), its state in
<stack_dir>/.debuglab/jupyter/ instead of <lab>/jupyter/.

Everything lives in <lab>/jupyter/: `token` (0600, made once; the server reads it through
JUPYTER_TOKEN_FILE, so it never shows in `ps`), `jupyterlab.json` (the pidfile),
`jupyterlab.log` (0600, like the token: it records what the student opened), `options.json`
(the last port), `config/` (JupyterLab's config and user settings: ~/.jupyter is
not read, so a personal config cannot open the server to the network or drop its token),
`runtime/`, `workspaces/` (the lab's open tabs).

The server runs in its own session; its kernels each lead their own (jupyter_client
starts them so). `stop` stops the server, then every session it led or started, so no
kernel outlives it.

The core returns values and raises the typed errors below; debuglab.notebooks.commands prints.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

from debuglab.core import private, service
from debuglab.core.console import Step
from debuglab.core.kit import Kit
from debuglab.core.processes import (
    alive,
    kill_session,
    listening,
    port_free,
    port_holder,
    session_members,
    sessions_started_by,
)
from debuglab.lab.rebuild import RunningService
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, kernel
from debuglab.notebooks.devstack import DevstackSite
from debuglab.notebooks.errors import (
    JupyterLabNotRunning,
    JupyterLabPortInUse,
    JupyterLabRunning,
    JupyterLabStartFailed,
    NotebookError,
)

Target = Workspace | DevstackSite  # a lab, or a DevStack host (its state in <stack_dir>/.debuglab/jupyter)

DEFAULT_PORT = kernel.DEVSTACK_JUPYTERLAB_PORT  # a DevStack host's; a lab has its own


@dataclass
class JupyterLabState:
    """What the pidfile records about a running JupyterLab."""

    pid: int
    port: int
    root_dir: str
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class JupyterLabStatus:
    running: bool
    pid: int | None
    port: int
    listening: bool
    log: Path


# --------------------------------------------------------------------------- paths, token


def _dir(ws: Target) -> Path:
    return kernel.jupyter_dir(ws)


def pidfile(ws: Target) -> Path:
    return _dir(ws) / "jupyterlab.json"


def log_path(ws: Target) -> Path:
    return _dir(ws) / "jupyterlab.log"


def token_path(ws: Target) -> Path:
    return _dir(ws) / "token"


def _options_path(ws: Target) -> Path:
    return _dir(ws) / "options.json"


def lab_token(ws: Target) -> str:
    """The lab's JupyterLab token: made once (0600 from the first byte), then kept."""
    path = token_path(ws)
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    token = text.strip()
    if token and text == token and (path.stat().st_mode & 0o077) == 0:
        return token
    token = token or secrets.token_urlsafe(32)
    private.folder(path.parent)
    private.write_text(path, token)  # no newline: JupyterLab reads the file whole
    return token


def last_port(ws: Target) -> int:
    """The port of the last start, or the lab's own (8888 on a DevStack host)."""
    try:
        return int(service.read_options(_options_path(ws))["port"])
    except (ValueError, KeyError, TypeError):
        return kernel.place(ws).default_port()


def url(ws: Target, port: int, token: str | None = None) -> str:
    """The address to open: the welcome notebook, with the token."""
    return f"http://127.0.0.1:{port}/lab/tree/{content.WELCOME}?token={token or lab_token(ws)}"


def ssh_forward(port: int) -> str:
    """The command that brings this host's JupyterLab to a laptop's 127.0.0.1:port."""
    return f"ssh -N -L {port}:127.0.0.1:{port} {getpass.getuser()}@{socket.gethostname()}"


# --------------------------------------------------------------------------- the command


def jupyterlab_command(ws: Target, kit: Kit, port: int) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that serve `labs/` with JupyterLab on 127.0.0.1 with the
    lab's token file and kernel."""
    lab_bin = Path(sys.executable).parent / "jupyter-lab"
    if not lab_bin.is_file():
        raise NotebookError(f"{lab_bin}: JupyterLab is not installed; reinstall the kit with `pip install -e .`")
    labs = kernel.served_dir(ws, kit)
    if not labs.is_dir():
        raise NotebookError(f"{labs}: the kit has no notebooks folder; is {kit.root} a debuglab checkout?")
    argv = [
        str(lab_bin), "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={labs}",
        f"--MappingKernelManager.default_kernel_name={kernel.kernel_name(ws)}",
        # a lab host may be offline, and a student has a notebook to read: no news, no update checks
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # a lab VM or container often runs as root
        argv.append("--allow-root")
    lab_token(ws)
    env = {
        **kernel.jupyter_env(ws),
        "JUPYTER_TOKEN_FILE": str(token_path(ws)),
        "JUPYTER_CONFIG_DIR": str(_dir(ws) / "config"),  # not ~/.jupyter: the same server on every host
        "JUPYTER_RUNTIME_DIR": str(_dir(ws) / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(_dir(ws) / "workspaces"),
        content.LAB_ENV: str(ws.root),
    }
    return argv, env


def _quiet_settings(ws: Target) -> None:
    """JupyterLab's first-run question about Jupyter news, answered "no" once for the lab
    (a student may change it in Settings; an existing answer is kept)."""
    path = (_dir(ws) / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
            / "notification.jupyterlab-settings")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"fetchNews": "false"}, indent=2) + "\n")


# --------------------------------------------------------------------------- pidfile


def _is_ours(ws: Target, pid: int) -> bool:
    """A JupyterLab started for this lab (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"jupyter-lab" in cmdline and f"{content.LAB_ENV}={ws.root}".encode() in environ


def read_state(ws: Target) -> JupyterLabState | None:
    """The running JupyterLab's state, or None (a stale pidfile is removed)."""
    return service.read_state(pidfile(ws), lambda data: JupyterLabState(**data),
                              lambda state: alive(state.pid) and _is_ours(ws, state.pid))


# --------------------------------------------------------------------------- start / stop / status


def _answers(port: int, token: str) -> bool:
    """True once the server on `port` accepts this token (so it is ours, and up)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(ws: Target, *, port: int | None = None, kit: Kit | None = None, timeout: float = 90,
          on_step: Step = lambda t: None) -> JupyterLabState:
    """Start JupyterLab in the background; return once it answers with the lab's token."""
    running = read_state(ws)
    if running is not None:
        raise JupyterLabRunning(f"JupyterLab already runs for {ws.root} (pid {running.pid}, port {running.port}); "
                                f"nothing was started. Its address: `debuglab notebook url --dir {quote(str(ws.root))}`")
    port = port or last_port(ws)
    deadline = time.monotonic() + 2
    while not port_free(port):  # a server stopped a moment ago may still hold it
        if time.monotonic() > deadline:
            raise JupyterLabPortInUse(
                f"port {port} on 127.0.0.1 (JupyterLab) is in use by another program{port_holder(port)}; "
                f"stop it, or choose another port: `debuglab notebook start --port N` (`debuglab up --notebook-port N`)")
        time.sleep(0.1)
    on_step("registering the debuglab kernel")
    kernel.register_kernel(ws)
    kit = kit or Kit.default()
    argv, env = jupyterlab_command(ws, kit, port)
    labs = str(kernel.served_dir(ws, kit))
    token = lab_token(ws)
    private.folder(_dir(ws))  # the token, and Jupyter's runtime files that repeat it
    for sub in ("config", "runtime", "workspaces"):
        private.folder(_dir(ws) / sub)
    _quiet_settings(ws)
    service.write_json(_options_path(ws), {"port": port})

    on_step(f"starting JupyterLab on 127.0.0.1:{port}")
    log = log_path(ws)
    inherited = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}  # it would beat the file
    child, offset = service.spawn(argv, log=log, title="notebook start", cwd=Path(labs), env={**inherited, **env})
    state = JupyterLabState(pid=child.pid, port=port, root_dir=labs)
    try:
        service.write_state(pidfile(ws), state)
        end = time.monotonic() + timeout
        while not _answers(port, token):
            code = child.poll()
            if code is not None:
                raise JupyterLabStartFailed(f"JupyterLab exited (code {code}) while starting; from {log}:\n"
                                            f"{service.log_excerpt(log, offset)}")
            if time.monotonic() > end:
                raise JupyterLabStartFailed(f"JupyterLab did not answer on 127.0.0.1:{port} in {timeout:.0f} s; "
                                            f"the end of {log}:\n{service.log_excerpt(log, offset)}")
            time.sleep(0.2)
    except BaseException:
        _stop_tree(child.pid, timeout=5)
        child.wait()
        pidfile(ws).unlink(missing_ok=True)
        raise
    on_step("JupyterLab answers")
    return state


def _stop_tree(pid: int, timeout: float) -> None:
    """Stop the server (SIGTERM: it shuts its kernels down), then kill whatever is left of
    its session and of the sessions it started."""
    kernels = sessions_started_by(pid)
    kill_session(pid, timeout)
    for sid in kernels:
        kill_session(sid, timeout=5)


def stop(ws: Target, timeout: float = 15) -> JupyterLabState | None:
    """Stop the lab's JupyterLab and its kernels; None if it was not running."""
    state = read_state(ws)
    if state is None:
        return None
    _stop_tree(state.pid, timeout)
    pidfile(ws).unlink(missing_ok=True)
    return state


def status(ws: Target) -> JupyterLabStatus:
    state = read_state(ws)
    if state is None:
        return JupyterLabStatus(False, None, last_port(ws), False, log_path(ws))
    return JupyterLabStatus(True, state.pid, state.port, listening(state.port), log_path(ws))


def running_url(ws: Target) -> str:
    """The address of the running JupyterLab (raises JupyterLabNotRunning)."""
    state = read_state(ws)
    if state is None:
        raise JupyterLabNotRunning(f"JupyterLab is not running for {ws.root}; "
                                   f"start it with `debuglab notebook start --dir {quote(str(ws.root))}`")
    return url(ws, state.port)


def log_tail(ws: Target, lines: int = 25) -> str:
    return service.log_tail(log_path(ws), lines)


def processes(state: JupyterLabState) -> list[int]:
    """Every live process of a running JupyterLab: its session and its kernels' sessions."""
    pids = session_members(state.pid)
    for sid in sessions_started_by(state.pid):
        pids += session_members(sid)
    return sorted(set(pids))


def wait(ws: Target, state: JupyterLabState, poll: float = 0.5) -> None:
    """Block while the server runs (the foreground `debuglab notebook`)."""
    while alive(state.pid):
        time.sleep(poll)


CARRIED = RunningService("JupyterLab", read_state, stop,  # what `lab create --force` stops and starts again
                         lambda ws, state: start(ws, port=state.port))
