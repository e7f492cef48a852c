"""Real OpenSSH servers for the provisioning tests and benchmark: no mocked SSH.

Each "host" is Debian's /usr/sbin/sshd with a host key generated here, in a network
namespace of its own (`ip netns add`, a veth pair, 10.213.<n>.1 on our side and
10.213.<n>.2 on the host's side: only addresses on veths made here). Where namespaces
cannot be made (no root, no `ip`), the servers listen on 127.0.0.1 ports instead.

The hosts share this machine's filesystem, so each gets a home folder of its own
(sshd's `SetEnv HOME=...`): the kit, /opt/stack-like trees and labs the tests put under
`~` stay apart. In a namespace, 127.0.0.1 is the host's own loopback, so a listener the
tests start there is reachable only through an SSH forward, as on a real VM.

The user key and a known_hosts holding every host key are written by `SshHosts`;
`known_hosts` can be left empty to exercise unknown host keys.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SUBNET = "10.213"  # 10.213.<n>.0/30 per host; refused if this machine already uses it
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")  # cgroup v1's cpu controller (SshHosts.cpu_quota)


def cpu_quota_available() -> bool:
    return os.geteuid() == 0 and (CPU_CGROUP / "cpu.cfs_quota_us").is_file()


def sshd_available() -> bool:
    return Path(SSHD).is_file() and shutil.which("ssh-keygen") is not None


def netns_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"dlprobe{secrets.token_hex(3)}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    in_use = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    return ok and f" {SUBNET}." not in in_use


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Host:
    name: str
    address: str  # where sshd listens
    port: int
    home: Path
    netns: str | None = None
    proc: subprocess.Popen | None = None
    host_pub: str = ""  # "ssh-ed25519 AAAA..."

    @property
    def spec(self) -> str:
        """The inventory's `user@host:port`."""
        return f"{getpass.getuser()}@{self.address}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def exec_argv(self, argv: list[str]) -> list[str]:
        """argv run inside the host's network namespace (its own 127.0.0.1)."""
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + argv


@dataclass
class SshHosts:
    """`count` sshd servers under `root`; use as a context manager (stops everything)."""

    root: Path
    count: int
    use_netns: bool = True
    env: dict[str, str] = field(default_factory=dict)  # extra SetEnv for every session
    # each host's CPU, in cores (a cgroup v1 CFS quota on its sshd and all it starts), so
    # that N hosts on this machine behave like N VMs with a CPU of their own; None: no limit
    cpu_quota: float | None = None
    hosts: list[Host] = field(default_factory=list)
    _veths: list[str] = field(default_factory=list)
    _tag: str = field(default_factory=lambda: secrets.token_hex(2))

    @property
    def user_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def __enter__(self) -> "SshHosts":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        except PermissionError:
            pass  # not root: sshd runs unprivileged and does not need it
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "debuglab-test",
                        "-f", self.user_key], check=True)
        pub = self.user_key.with_suffix(".pub").read_text()
        for n in range(self.count):
            self.hosts.append(self._start_one(n, pub))
            if self.cpu_quota is not None:
                self._limit_cpu(self.hosts[-1])
        self.write_known_hosts()
        for host in self.hosts:
            _wait_port(host.address, host.port)

    def _start_one(self, n: int, user_pub: str) -> Host:
        d = self.root / f"host{n}"
        (d / "etc").mkdir(parents=True)
        home = d / "home"
        home.mkdir()
        key = d / "etc" / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        (d / "etc" / "authorized_keys").write_text(user_pub)
        if self.use_netns:
            ns = f"dl{self._tag}h{n}"
            outside, inside = f"dl{self._tag}a{n}", f"dl{self._tag}b{n}"
            third = n + 1
            for argv in (
                ["ip", "netns", "add", ns],
                ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", ns],
                ["ip", "addr", "add", f"{SUBNET}.{third}.1/30", "dev", outside],
                ["ip", "link", "set", outside, "up"],
                ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{SUBNET}.{third}.2/30", "dev", inside],
                ["ip", "netns", "exec", ns, "ip", "link", "set", inside, "up"],
                ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
            ):
                subprocess.run(argv, check=True, capture_output=True)
                if argv[1:3] == ["link", "add"]:
                    self._veths.append(outside)
            host = Host(f"host{n}", f"{SUBNET}.{third}.2", 22, home, netns=ns)
        else:
            host = Host(f"host{n}", "127.0.0.1", _free_port(), home)
        setenv = " ".join(f'"{k}={v}"' for k, v in {"HOME": str(home), **self.env}.items())
        config = d / "etc" / "sshd_config"
        config.write_text(
            f"Port {host.port}\nListenAddress {host.address}\nHostKey {key}\n"
            f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'etc' / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "AllowTcpForwarding yes\nMaxStartups 100:30:200\nMaxSessions 50\n"
            f"SetEnv {setenv}\nSubsystem sftp internal-sftp\n"
        )
        log = open(d / "sshd.log", "wb")
        host.proc = subprocess.Popen(host.exec_argv([SSHD, "-D", "-e", "-f", str(config)]),
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        host.host_pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        return host

    def write_known_hosts(self, hosts: list[Host] | None = None) -> None:
        hosts = self.hosts if hosts is None else hosts
        self.known_hosts.write_text("".join(f"{h.known_hosts_name} {h.host_pub}\n" for h in hosts))

    def _cgroup(self, host: Host) -> Path:
        return CPU_CGROUP / f"debuglab-sshhosts-{self._tag}-{host.name}"

    def _limit_cpu(self, host: Host) -> None:
        """The host's sshd into a cpu cgroup of its own: its sessions and whatever they
        start (JupyterLab, a cloud) inherit it."""
        group = self._cgroup(host)
        group.mkdir()
        period = int((CPU_CGROUP / "cpu.cfs_period_us").read_text())
        (group / "cpu.cfs_period_us").write_text(str(period))
        (group / "cpu.cfs_quota_us").write_text(str(int(period * self.cpu_quota)))
        (group / "cgroup.procs").write_text(str(host.proc.pid))

    def _release_cpu(self, host: Host) -> None:
        """Kill what is left in the host's cpu cgroup and remove the group."""
        group = self._cgroup(host)
        if not group.is_dir():
            return
        _kill(map(int, (group / "cgroup.procs").read_text().split()))
        for _ in range(50):  # the killed leave the group a moment later
            try:
                group.rmdir()
                return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        for host in self.hosts:
            if host.proc and host.proc.poll() is None:
                os.killpg(host.proc.pid, 15)
                try:
                    host.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(host.proc.pid, 9)
                    host.proc.wait()
        for host in self.hosts:
            if host.netns:
                kill_host_processes(host)  # listeners and session leftovers (sshd is gone already)
                subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        for host in self.hosts:
            self._release_cpu(host)
        for veth in self._veths:  # normally gone with its peer's namespace
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        self.hosts.clear()
        self._veths.clear()


def host_processes(host: Host) -> list[tuple[int, str]]:
    """(pid, command line) of what runs in the host's namespace, its sshd listener excluded."""
    out = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout
    found = []
    for pid in map(int, out.split()):
        if host.proc and pid == host.proc.pid:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append((pid, cmd))
    return found


def kill_host_processes(host: Host) -> list[str]:
    """Kill what runs in the host's namespace but its sshd (JupyterLab, a cloud, sessions
    left by an earlier run); returns what was killed."""
    found = host_processes(host)
    _kill(pid for pid, _ in found)
    return [f"{pid} {cmd}" for pid, cmd in found]


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _wait_port(address: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd on {address}:{port} did not come up")
        time.sleep(0.05)


# ---- a DevStack-shaped host ----------------------------------------------------------

DEVSTACK_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3.11"


def devstack_template(root: Path, nova_sdist: Path, project) -> Path:
    """`root/stack`: an /opt/stack-like folder whose nova is the pinned sdist committed into
    git in two commits (as a DevStack clone has history), and `root/venv`: a Python venv
    standing in for DevStack's /opt/stack/data/venv. Copied into each host's home."""
    from debuglab.lab import upstream

    stack = root / "stack"
    stack.mkdir(parents=True)
    nova = upstream.extract(project, nova_sdist, stack / "nova")
    env = {**os.environ, "GIT_AUTHOR_NAME": "devstack", "GIT_AUTHOR_EMAIL": "d@example.org",
           "GIT_COMMITTER_NAME": "devstack", "GIT_COMMITTER_EMAIL": "d@example.org"}

    def git(*args):
        subprocess.run(["git", "-C", nova, *args], check=True, capture_output=True, env=env)

    git("init", "-q", "-b", "master")
    # as nova's own .gitignore does in a DevStack clone: the egg-info is built, not tracked
    (nova / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (nova / ".git" / "info" / "exclude").write_text("*.egg-info/\n")
    readme = nova / "README.rst"
    text = readme.read_text()
    readme.write_text(text + "\nupstream history, first commit\n")
    git("add", "-A")
    git("commit", "-q", "-m", "Import nova 34.0.0")
    readme.write_text(text)
    git("commit", "-q", "-am", "Second commit: local DevStack tweak")
    # what DevStack's `pip install -e /opt/stack/nova` leaves in the checkout (ignored by git)
    (nova / "nova.egg-info").mkdir(exist_ok=True)
    (nova / "nova.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: nova\nVersion: 34.0.0\n")
    subprocess.run([DEVSTACK_PYTHON if Path(DEVSTACK_PYTHON).exists() else "python3", "-m", "venv", root / "venv"],
                   check=True, capture_output=True)
    return root


def install_devstack(template: Path, home: Path) -> None:
    """The template as this host's ~/opt/stack and ~/opt/stack/data/venv."""
    opt = home / "opt"
    opt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", template / "stack", opt / "stack"], check=True)
    # a copy has new inodes and ctimes: refresh the index's stat data, as DevStack's
    # `git clone` leaves it matching the files it wrote
    subprocess.run(["git", "-C", opt / "stack" / "nova", "update-index", "-q", "--refresh"], check=False)
    (opt / "stack" / "data").mkdir()
    venv = opt / "stack" / "data" / "venv"
    subprocess.run(["cp", "-a", template / "venv", venv], check=True)
    # as DevStack's `pip install -e /opt/stack/nova` does: nova importable from the checkout
    # (nova's own dependencies are not installed in this stand-in venv)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "__editable__.nova-34.0.0.pth").write_text(f"{opt / 'stack' / 'nova'}\n")


def devstack_inventory(hosts: list[Host], known_hosts: Path, key: Path, extra_hosts: str = "", klass: str = "") -> str:
    """An inventory for devstack hosts shaped by install_devstack. The unit restart and
    the notebooks' journal go through recording commands, since these hosts have no
    systemd or journald. The hosts' python3 is the Python 3.11 the kit's wheels need
    (DEVSTACK_PYTHON, of which the stand-in DevStack venv is made)."""
    python = f'python = "{DEVSTACK_PYTHON}"' if "python" not in klass and Path(DEVSTACK_PYTHON).exists() else ""
    text = f'''[class]
bugs = "all"
known_hosts = "{known_hosts}"
key_file = "{key}"
connect_timeout = 5
{python}
{klass}
[devstack]
stack_dir = "~/opt/stack"
venv_python = "~/opt/stack/data/venv/bin/python"
systemd_dir = "~/etc/systemd/system"
sudo = ""
restart_command = "echo {{units}} >> ~/restarts.log"
journal_command = "tail -n {{lines}} ~/journal/{{unit}}.log"
clouds_yaml = "~/clouds.yaml"
'''
    for i, h in enumerate(hosts):
        text += f'\n[[host]]\naddress = "{h.spec}"\nprofile = "devstack"\nstudent = "student{i}"\n'
    return text + extra_hosts


# ---- a `lab` host ----------------------------------------------------------------------


def frozen_kit(kit_root: Path, dest: Path) -> Path:
    """A copy of the kit's uploaded parts as they are now, for DEBUGLAB_KIT: the bundle's
    hash must not move between two provisioning runs while the tree is being edited."""
    from debuglab.provision import upload

    for part in upload.PARTS:
        source = kit_root / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, dest / part)
    return dest


def lab_inventory(hosts: list[Host], known_hosts: Path, key: Path, bugs: list[str],
                  students: list[str] | None = None) -> str:
    """An inventory for `lab` hosts: each builds its lab at ~/lab with the Python 3.11 the
    kit's wheels need (DEVSTACK_PYTHON); students are student0, student1... unless named."""
    students = students or [f"student{i}" for i in range(len(hosts))]
    text = f'''[class]
known_hosts = "{known_hosts}"
key_file = "{key}"
bugs = {json.dumps(bugs)}
python = "{DEVSTACK_PYTHON}"
[lab]
dir = "~/lab"
min_free_gb = 1
'''
    for h, student in zip(hosts, students, strict=True):
        text += f'[[host]]\naddress = "{h.spec}"\nprofile = "lab"\nstudent = "{student}"\n'
    return text


def host_run(host: Host, argv: list[str], **kw) -> subprocess.CompletedProcess:
    """argv inside the host's network namespace, as its SSH sessions run (its HOME)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUGLAB_", "VIRTUAL_ENV", "UV_"))}
    env["HOME"] = str(host.home)
    return subprocess.run(host.exec_argv(argv), capture_output=True, text=True, env=env, **kw)
