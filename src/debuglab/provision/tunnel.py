"""`debuglab tunnel`: the SSH forwards a student needs, as one `ssh` command to print or
run. Everything on the host listens on its loopback only; the forwards bring it here:
JupyterLab, each service's remote-pdb, debugpy; and a reverse forward so that
`pydevd_pycharm.settrace('127.0.0.1', port=...)` on the host reaches PyCharm's debug
server on the student's machine."""

from __future__ import annotations

from dataclasses import dataclass

from debuglab.provision.inventory import Host, Inventory

JUPYTER_PORT = 8888
DEBUGPY_PORT = 5678
PYCHARM_PORT = 12345


@dataclass(frozen=True)
class Forward:
    kind: str  # "L" (here -> host) or "R" (host -> here)
    local: int  # the port on the student's machine
    remote: int  # the port on the host's loopback
    what: str

    def option(self) -> list[str]:
        if self.kind == "L":
            return ["-L", f"127.0.0.1:{self.local}:127.0.0.1:{self.remote}"]
        return ["-R", f"127.0.0.1:{self.remote}:127.0.0.1:{self.local}"]


@dataclass(frozen=True)
class Tunnel:
    host: Host
    forwards: tuple[Forward, ...]
    argv: tuple[str, ...]


def forwards(host: Host, inv: Inventory, offset: int = 0) -> list[Forward]:
    out = [Forward("L", JUPYTER_PORT + offset, JUPYTER_PORT, "JupyterLab")]
    if host.profile == "lab":  # the mini-cloud's debugger hooks (debuglab cloud start --debug ...)
        from debuglab.cloud.config import DEFAULT_DEBUG_PORTS as ports

        out.append(Forward("L", ports["remote-pdb"] + offset, ports["remote-pdb"], "remote-pdb of the mini-cloud"))
        out.append(Forward("L", ports["debugpy"] + offset, ports["debugpy"], "debugpy of the mini-cloud"))
        out.append(Forward("R", ports["pycharm"] + offset, ports["pycharm"], "PyCharm debug server (reverse)"))
        return out
    out += [Forward("L", port + offset, port, f"remote-pdb of {unit}") for unit, port in inv.devstack.services]
    out.append(Forward("L", DEBUGPY_PORT + offset, DEBUGPY_PORT, "debugpy"))
    out.append(Forward("R", PYCHARM_PORT + offset, PYCHARM_PORT, "PyCharm debug server (reverse)"))
    return out


def tunnel(inv: Inventory, key: str, *, offset: int = 0, accept_new_host_keys: bool = False) -> Tunnel:
    host = inv.find(key)
    fwd = forwards(host, inv, offset)
    argv = ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes",
            "-o", f"StrictHostKeyChecking={'accept-new' if accept_new_host_keys else 'yes'}",
            "-o", f"UserKnownHostsFile={inv.known_hosts}", "-p", str(host.port),
            # a host that takes the TCP connection but never speaks SSH must not hang the tunnel
            "-o", f"ConnectTimeout={max(1, int(inv.connect_timeout))}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
    if host.key_file is not None:
        argv += ["-i", str(host.key_file), "-o", "IdentitiesOnly=yes"]
    for f in fwd:
        argv += f.option()
    argv.append(f"{host.user}@{host.hostname}")
    return Tunnel(host, tuple(fwd), tuple(argv))
