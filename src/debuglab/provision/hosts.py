"""Reaching the hosts (fabric `Connection`, `ThreadingGroup`), host keys checked against
known_hosts, and the host check: Python, git, free disk, the upstream version it holds.
"""

from __future__ import annotations

import json
import shlex
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko
from fabric import Config, Connection, ThreadingGroup
from fabric.exceptions import GroupException

from debuglab.provision.errors import (
    HostAuthError,
    HostCheckFailed,
    HostError,
    HostKeyError,
    RemoteStepFailed,
    UnreachableHost,
)
from debuglab.provision.inventory import Host, Inventory
from debuglab.provision.wheelhouse import HASH_FILE as WHEELHOUSE_HASH_FILE

_known_hosts_lock = threading.Lock()


HASH_FILE = ".kit-sha256"  # beside the kit on a host: the sha256 of the bundle it was unpacked from


def remote_path(path: str) -> str:
    """A remote path for a shell command: `~/x` stays relative to the remote $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class _UnknownKey(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key known_hosts lacks, or (accept_new) append it there."""

    def __init__(self, host: Host, known_hosts: Path, accept_new: bool):
        self.host, self.known_hosts, self.accept_new = host, known_hosts, accept_new

    def missing_host_key(self, client, hostname, key):
        name = self.host.known_hosts_name
        if not self.accept_new:
            raise HostKeyError(
                self.host.label,
                f"unknown host key ({key.get_name()} {key.fingerprint}) for {name}: not in {self.known_hosts}. "
                "Check the fingerprint with the VM's console, then run again with --accept-new-host-keys",
            )
        with _known_hosts_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.known_hosts, "a") as fh:
                fh.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(name, key.get_name(), key)


def connection(host: Host, inv: Inventory, *, accept_new: bool = False) -> Connection:
    config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True, "pty": False}})
    connect_kwargs = {"look_for_keys": False, "allow_agent": host.key_file is None,
                      "banner_timeout": inv.connect_timeout, "auth_timeout": inv.connect_timeout}
    if host.key_file is not None:
        connect_kwargs["key_filename"] = str(host.key_file)
    conn = Connection(host.hostname, user=host.user, port=host.port, config=config,
                      connect_timeout=int(inv.connect_timeout), connect_kwargs=connect_kwargs)
    if inv.known_hosts.is_file():
        conn.client.get_host_keys().load(str(inv.known_hosts))
    conn.client.set_missing_host_key_policy(_UnknownKey(host, inv.known_hosts, accept_new))
    conn.debuglab_host = host
    return conn


def as_host_error(host: Host, exc: BaseException) -> HostError:
    """One clear message for whatever stopped us talking to the host."""
    if isinstance(exc, HostError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(host.label, f"the host key of {host.known_hosts_name} has CHANGED (got {exc.key.get_name()} "
                                        f"{exc.key.fingerprint}); someone may be intercepting, or the VM was "
                                        "rebuilt: check, then remove the old line from known_hosts")
    if isinstance(exc, paramiko.AuthenticationException):
        how = f"key {host.key_file}" if host.key_file else "ssh-agent's keys"
        return HostAuthError(host.label, f"{host.user}@{host.hostname} refused the {how}: {exc}")
    if host.key_file is not None and not host.key_file.exists():
        return HostAuthError(host.label, f"the key {host.key_file} does not exist (key_file of {host.student} in the "
                                     "inventory): fix the path, or make the key with ssh-keygen")
    if isinstance(exc, paramiko.SSHException) and any(
            words in str(exc) for words in ("protocol banner", "No existing session")):
        return UnreachableHost(host.label, f"{host.hostname}:{host.port} accepts connections but does not speak "
                                           f"SSH (no SSH banner within the inventory's connect_timeout): is sshd "
                                           "listening on that port, or another program?")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return UnreachableHost(host.label, f"cannot connect to {host.hostname}:{host.port} (connection refused)")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return UnreachableHost(host.label, f"no answer from {host.hostname}:{host.port} (timed out)")
    if isinstance(exc, OSError):
        return UnreachableHost(host.label, f"cannot connect to {host.hostname}:{host.port}: {exc.strerror or exc}")
    if isinstance(exc, paramiko.SSHException):
        return UnreachableHost(host.label, f"SSH to {host.hostname}:{host.port} failed: {exc}")
    return RemoteStepFailed(host.label, f"{type(exc).__name__}: {exc}")


def run(conn: Connection, command: str, step: str) -> str:
    """Run a shell command on the host; RemoteStepFailed with its output if it fails."""
    host: Host = conn.debuglab_host
    try:
        result = conn.run(command, hide=True, warn=True, pty=False, in_stream=False)
    except Exception as exc:  # connection dropped, etc.
        raise as_host_error(host, exc) from exc
    if result.exited != 0:
        output = (result.stdout + result.stderr).strip()
        raise RemoteStepFailed(host.label, f"{step} failed (exit {result.exited}):\n{output[-3000:]}")
    return result.stdout


def agent(conn: Connection, op: str, args: dict, step: str) -> dict:
    """Run one operation of debuglab.provision.agent on the host (the kit's own code,
    standard library only, as the SSH user, never as root) and return its JSON answer."""
    host: Host = conn.debuglab_host
    command = (f"cd / && PYTHONPATH={remote_path(host.kit_dir)}/src PYTHONDONTWRITEBYTECODE=1 "
               f"{remote_path(host.python)} -m debuglab.provision.agent {op} {shlex.quote(json.dumps(args))}")
    try:
        result = conn.run(command, hide=True, warn=True, pty=False, in_stream=False)
    except Exception as exc:
        raise as_host_error(host, exc) from exc
    lines = result.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        output = (result.stdout + result.stderr).strip()
        raise RemoteStepFailed(host.label, f"{step} failed (exit {result.exited}):\n{output[-3000:]}")
    if "error" in answer:
        raise RemoteStepFailed(host.label, f"{step}: {answer['error']}")
    return answer


# ---- the host check --------------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    python: str | None  # "3.11.2", or None when there is no such interpreter
    git: str | None
    free_gb: float | None
    kit_sha256: str | None
    upstream: str | None  # the nova version the host holds ("missing", "unknown")
    platform: str | None = None  # sysconfig.get_platform() of that Python: "linux-x86_64"
    wheelhouse_sha256: str | None = None  # the uploaded wheelhouse's hash (lab hosts; DevStack's JupyterLab)


def probe_command(host: Host, inv: Inventory) -> str:
    """A POSIX shell script that reports the facts, whatever Python the host has."""
    py = remote_path(host.python)
    kit = remote_path(host.kit_dir)
    if host.profile == "devstack":
        stack = remote_path(inv.devstack.stack_dir)
        space = stack
        # DevStack's own repository is $n/.git, or (once provisioned) set aside as $o
        upstream = (
            f'o={stack}/.debuglab/original/nova.git; n={stack}/nova; g="$n/.git"; [ -d "$o" ] && g="$o"; '
            'if [ ! -d "$n" ]; then echo upstream=missing; '
            'elif [ -f "$n/PKG-INFO" ]; then echo "upstream=$(sed -n "s/^Version: //p" "$n/PKG-INFO" | head -n1)"; '
            'elif [ -d "$g" ]; then echo "upstream=$(git -c safe.directory="*" --git-dir="$g" describe --tags --exact-match 2>/dev/null || echo unknown)"; '
            'else echo upstream=missing; fi; '
            f'echo "wheelhouse=$(cat {remote_path(inv.devstack.wheelhouse)}/{WHEELHOUSE_HASH_FILE} 2>/dev/null || echo none)"'
        )
    else:
        lab = remote_path(inv.lab.dir)
        space = lab
        upstream = (f'if [ -f {lab}/lab.toml ]; then echo "upstream=$(sed -n "/^\\[projects.nova\\]/,/^\\[/s/^version = \\"\\(.*\\)\\"/\\1/p" '
                    f'{lab}/lab.toml | head -n1)"; else echo upstream=none; fi; '
                    f'echo "wheelhouse=$(cat {remote_path(inv.lab.wheelhouse)}/{WHEELHOUSE_HASH_FILE} 2>/dev/null || echo none)"')
    return "; ".join([
        f"echo python=$({py} -c 'import sys, sysconfig; print(\"%d.%d.%d\" % sys.version_info[:3], sysconfig.get_platform())' "
        "2>/dev/null || echo none)",
        'echo "git=$(git --version 2>/dev/null || echo none)"',
        f'd={space}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "free_kb=$(df -Pk "$d" | awk \'NR==2{{print $4}}\')"',
        f'echo "kit=$(cat {kit}/{HASH_FILE} 2>/dev/null || echo none)"',
        upstream,
    ])


def parse_facts(text: str) -> Facts:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()

    def some(key):
        v = values.get(key)
        return None if v in (None, "", "none") else v

    free_kb = some("free_kb")
    python, _, platform = (some("python") or "").partition(" ")
    return Facts(
        python=python or None, git=some("git"),
        free_gb=int(free_kb) / (1 << 20) if free_kb and free_kb.isdigit() else None,
        kit_sha256=some("kit"), upstream=some("upstream"),
        platform=platform.strip() or None, wheelhouse_sha256=some("wheelhouse"),
    )


def check(host: Host, inv: Inventory, facts: Facts, upstream_version: str) -> None:
    """HostCheckFailed naming every problem the host has."""
    problems = []
    if facts.python is None:
        problems.append(f"no Python at '{host.python}'")
    else:
        found = tuple(int(x) for x in facts.python.split(".")[:2])
        if found < inv.min_python:
            need = ".".join(map(str, inv.min_python))
            problems.append(f"Python {facts.python} at '{host.python}', but the kit needs Python {need} or newer")
    if facts.git is None:
        problems.append("git is not installed")
    need_gb = host.min_free_gb if host.min_free_gb is not None else (
        inv.devstack.min_free_gb if host.profile == "devstack" else inv.lab.min_free_gb)
    if facts.free_gb is None:
        problems.append("cannot tell the free disk space")
    elif facts.free_gb < need_gb:
        problems.append(f"only {facts.free_gb:.1f} GB free, {need_gb:g} GB needed")
    if host.profile == "devstack":
        if facts.upstream == "missing":
            problems.append(f"no nova checkout at {inv.devstack.stack_dir}/nova: is this a DevStack host?")
        elif facts.upstream == "unknown":
            problems.append(f"cannot tell which nova release {inv.devstack.stack_dir}/nova holds (no PKG-INFO, and its "
                            f"HEAD is not a release tag): deploy DevStack with NOVA_BRANCH={upstream_version}")
        elif facts.upstream != upstream_version:
            problems.append(f"{inv.devstack.stack_dir}/nova holds nova {facts.upstream}, but the bugs are written "
                            f"against nova {upstream_version}: deploy DevStack with nova {upstream_version}")
    if problems:
        raise HostCheckFailed(host.label, "; ".join(problems))


def probe_all(conns: list[Connection], inv: Inventory) -> dict[Host, Facts | HostError]:
    """Probe every host at once: one fabric ThreadingGroup per distinct probe script."""
    by_command: dict[str, list[Connection]] = {}
    for conn in conns:
        by_command.setdefault(probe_command(conn.debuglab_host, inv), []).append(conn)
    out: dict[Host, Facts | HostError] = {}
    for command, group_conns in by_command.items():
        group = ThreadingGroup.from_connections(group_conns)
        try:
            results = group.run(command, hide=True, warn=True, pty=False, in_stream=False)
        except GroupException as exc:
            results = exc.result
        for conn, result in results.items():
            host = conn.debuglab_host
            if isinstance(result, BaseException):
                out[host] = as_host_error(host, result)
            elif result.exited != 0:
                out[host] = RemoteStepFailed(host.label, f"host check failed: {(result.stdout + result.stderr)[-2000:]}")
            else:
                out[host] = parse_facts(result.stdout)
    return out
