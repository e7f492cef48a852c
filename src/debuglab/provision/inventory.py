"""The class inventory (`instructor/class.example.toml` documents it): who sits at which
host, how to reach it over SSH, what each host is (`devstack` or `lab`) and which bugs.

Loaded into frozen dataclasses and validated in one place; every error names the file
and the line of the offending entry.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from debuglab.catalog.model import Catalog
from debuglab.provision.errors import InventoryError

PROFILES = ("devstack", "lab")
ADDRESS = re.compile(r"^(?P<user>[A-Za-z_][A-Za-z0-9_.-]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?$")
SECRET_WORDS = ("password", "passwd", "passphrase", "secret")
# DevStack's nova units and the loopback port each one's remote-pdb listens on.
DEFAULT_SERVICES = {
    "devstack@n-api": 4444,
    "devstack@n-api-meta": 4445,
    "devstack@n-cond-cell1": 4446,
    "devstack@n-super-cond": 4447,
    "devstack@n-sch": 4448,
    "devstack@n-cpu": 4449,
}


@dataclass(frozen=True)
class DevstackSettings:
    stack_dir: str = "/opt/stack"
    venv_python: str = "/opt/stack/data/venv/bin/python"  # DevStack's python (GLOBAL_VENV)
    systemd_dir: str = "/etc/systemd/system"
    sudo: str = "sudo"  # prefix for the few root steps: drop-ins only (never kit code)
    restart_command: str = "sudo systemctl daemon-reload && sudo systemctl restart {units}"
    services: tuple[tuple[str, int], ...] = tuple(DEFAULT_SERVICES.items())
    min_free_gb: float = 1.0
    # JupyterLab on the host: debuglab in a venv of its own (from the uploaded wheelhouse,
    # DevStack's pins untouched), serving labs/devstack/ with DevStack's python as kernel
    venv: str = "~/debuglab-venv"
    wheelhouse: str = "~/debuglab-wheelhouse"
    notebook_command: str = "{debuglab} notebook start --devstack {stack_dir}"  # "" to not start JupyterLab
    journal_command: str = "sudo journalctl -u {unit} -n {lines} --no-pager"  # what the notebooks' journal() runs
    clouds_yaml: str = "/etc/openstack/clouds.yaml"  # DevStack writes it; the notebooks' clients read it
    nova_conf: str = "/etc/nova/nova.conf"  # the units' config, which a bug's reproduce cell may set options in
    # how a notebook sets one option of nova_conf: DevStack's own iniset ({stack_dir}, {nova_conf} filled in here)
    config_command: str = ("bash -c '. {stack_dir}/devstack/inc/ini-config && iniset -sudo \"$0\" \"$1\" \"$2\" \"$3\"' "
                           "{nova_conf} {section} {option} {value}")


@dataclass(frozen=True)
class LabSettings:
    dir: str = "~/lab"
    venv: str = "~/debuglab-venv"  # where provision installs debuglab on the host
    wheelhouse: str = "~/debuglab-wheelhouse"  # the uploaded wheels it installs from, offline
    cloud_command: str = "{debuglab} cloud start --dir {dir}"  # "" to not start the mini-cloud
    notebook_command: str = "{debuglab} notebook start --dir {dir}"  # "" to not start JupyterLab
    min_free_gb: float = 5.0


@dataclass(frozen=True)
class Host:
    name: str  # user@host:port as written
    user: str
    hostname: str
    port: int
    profile: str
    student: str
    bugs: tuple[str, ...]  # () means the whole catalog
    key_file: Path | None  # None: ssh-agent
    python: str  # the host's python3 for the kit's helper
    kit_dir: str
    min_free_gb: float | None  # None: the profile's default
    line: int  # where it is written in the inventory

    @property
    def label(self) -> str:
        return f"{self.student} ({self.user}@{self.hostname}:{self.port})"

    @property
    def known_hosts_name(self) -> str:
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[Host, ...]
    known_hosts: Path
    devstack: DevstackSettings = field(default_factory=DevstackSettings)
    lab: LabSettings = field(default_factory=LabSettings)
    connect_timeout: float = 10.0
    min_python: tuple[int, int] = (3, 11)
    class_id: str | None = None  # set by `debuglab class up`: marks the class's servers
    cloud: str | None = None

    def find(self, key: str) -> Host:
        """A host by its student, its `user@host:port`, or its host name."""
        matches = [h for h in self.hosts if key in (h.student, h.name, h.hostname, f"{h.hostname}:{h.port}")]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise InventoryError(f"{self.path}: no host or student '{key}' in the inventory")
        raise InventoryError(f"{self.path}: '{key}' matches {len(matches)} hosts; name it as user@host:port")

    def with_bugs(self, bugs: list[str]) -> "Inventory":
        return replace(self, hosts=tuple(replace(h, bugs=tuple(bugs)) for h in self.hosts))


class _Lines:
    """Line numbers of tables and keys in the TOML text (tomllib gives none)."""

    HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
    KEY = re.compile(r"^\s*\"?([A-Za-z0-9_@.-]+)\"?\s*=")

    def __init__(self, text: str):
        self.tables: dict[tuple[str, int], int] = {}
        self.keys: dict[tuple[str, int, str], int] = {}
        counts: dict[str, int] = {}
        current = ("", 0)
        for number, line in enumerate(text.splitlines(), 1):
            header = self.HEADER.match(line)
            if header:
                name = header.group(1).replace('"', "")
                index = counts.get(name, -1) + 1 if line.lstrip().startswith("[[") else 0
                counts[name] = index
                current = (name, index)
                self.tables[current] = number
                continue
            key = self.KEY.match(line)
            if key:
                self.keys.setdefault((*current, key.group(1)), number)

    def of(self, table: str, index: int = 0, key: str | None = None) -> int:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.tables.get((table, index), 1)


def load(path: Path, *, catalog: Catalog | None = None) -> Inventory:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: not valid TOML: {exc}") from exc
    lines = _Lines(text)
    base = path.parent.resolve()

    def fail(line: int, message: str):
        raise InventoryError(f"{path}:{line}: {message}")

    def check_keys(table: dict, name: str, index: int, allowed: set[str]) -> None:
        for key in table:
            line = lines.of(name, index, key)
            if any(word in key.lower() for word in SECRET_WORDS):
                fail(line, f"'{key}': no passwords or secrets in the inventory; use a key file or ssh-agent")
            if key not in allowed:
                fail(line, f"unknown key '{key}' in [{name}] (known: {', '.join(sorted(allowed))})")

    def typed(table: dict, name: str, index: int, key: str, kind, default):
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds).replace("str", "a string").replace("int", "a number").replace("float", "a number")
            fail(lines.of(name, index, key), f"'{key}' must be {wanted}, not {value!r}")
        return value

    klass = data.get("class", {})
    check_keys(klass, "class", 0, {"bugs", "known_hosts", "key_file", "python", "kit_dir", "min_python",
                                   "connect_timeout", "class_id", "cloud"})
    for section in data:
        if section not in ("class", "devstack", "lab", "host"):
            fail(lines.of(section), f"unknown table [{section}] (known: [class], [devstack], [lab], [[host]])")

    def local_path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    def bug_list(table: dict, name: str, index: int) -> tuple[str, ...] | None:
        if "bugs" not in table:
            return None
        value = table["bugs"]
        line = lines.of(name, index, "bugs")
        if value == "all":
            ids: list[str] = []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            ids = list(value)
        else:
            fail(line, f"'bugs' must be \"all\" or a list of bug ids, not {value!r}")
        if catalog is not None and ids:
            unknown = [i for i in ids if i not in catalog.bugs]
            if unknown:
                fail(line, f"unknown bug(s) {', '.join(unknown)} (the catalog holds: {', '.join(sorted(catalog.bugs))})")
        return tuple(ids)

    class_bugs = bug_list(klass, "class", 0) or ()
    known_hosts = local_path(typed(klass, "class", 0, "known_hosts", str, "~/.ssh/known_hosts"))
    class_key = typed(klass, "class", 0, "key_file", str, None)
    class_python = typed(klass, "class", 0, "python", str, "python3")
    class_kit = typed(klass, "class", 0, "kit_dir", str, "~/debuglab-kit")
    timeout = float(typed(klass, "class", 0, "connect_timeout", (int, float), 10))
    min_py_text = typed(klass, "class", 0, "min_python", str, "3.11")
    if not re.fullmatch(r"3\.\d+", min_py_text):
        fail(lines.of("class", 0, "min_python"), f"'min_python' must look like \"3.11\", not {min_py_text!r}")
    min_python = tuple(int(x) for x in min_py_text.split("."))

    ds_table = data.get("devstack", {})
    check_keys(ds_table, "devstack", 0, {f for f in DevstackSettings.__dataclass_fields__})
    ds_kwargs = {}
    for key in ("stack_dir", "venv_python", "systemd_dir", "sudo", "restart_command", "venv", "wheelhouse",
                "notebook_command", "journal_command", "clouds_yaml", "nova_conf", "config_command"):
        if key in ds_table:
            ds_kwargs[key] = typed(ds_table, "devstack", 0, key, str, None)
    if "min_free_gb" in ds_table:
        ds_kwargs["min_free_gb"] = float(typed(ds_table, "devstack", 0, "min_free_gb", (int, float), 0))
    if "services" in ds_table:
        services = ds_table["services"]
        line = lines.of("devstack.services")
        if not isinstance(services, dict) or not services:
            fail(lines.of("devstack", 0, "services"), "'services' must be a table of unit = remote-pdb port")
        ports: dict[int, str] = {}
        for unit, port in services.items():
            uline = lines.of("devstack.services", 0, unit) if ("devstack.services", 0, unit) in lines.keys else line
            if not re.fullmatch(r"[A-Za-z0-9@_.:-]+", unit):
                fail(uline, f"'{unit}' is not a systemd unit name")
            if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
                fail(uline, f"'{unit}': the remote-pdb port must be a number from 1024 to 65535, not {port!r}")
            if port in ports:
                fail(uline, f"'{unit}' and '{ports[port]}' both use port {port}; each service needs its own")
            ports[port] = unit
        ds_kwargs["services"] = tuple(services.items())
    if "{units}" not in ds_kwargs.get("restart_command", "{units}"):
        fail(lines.of("devstack", 0, "restart_command"), "'restart_command' must contain {units}")
    if "{unit}" not in ds_kwargs.get("journal_command", "{unit}"):
        fail(lines.of("devstack", 0, "journal_command"), "'journal_command' must contain {unit} (and may use {lines})")
    if not all(f"{{{k}}}" in ds_kwargs.get("config_command", "{section}{option}{value}") for k in ("section", "option", "value")):
        fail(lines.of("devstack", 0, "config_command"), "'config_command' must contain {section}, {option} and {value}")
    devstack = DevstackSettings(**ds_kwargs)

    lab_table = data.get("lab", {})
    check_keys(lab_table, "lab", 0, {f for f in LabSettings.__dataclass_fields__})
    lab_kwargs = {k: typed(lab_table, "lab", 0, k, str, None)
                  for k in ("dir", "venv", "wheelhouse", "cloud_command", "notebook_command") if k in lab_table}
    if "min_free_gb" in lab_table:
        lab_kwargs["min_free_gb"] = float(typed(lab_table, "lab", 0, "min_free_gb", (int, float), 0))
    lab = LabSettings(**lab_kwargs)

    raw_hosts = data.get("host", [])
    if not isinstance(raw_hosts, list) or not raw_hosts:
        fail(lines.of("host"), "no hosts: add one [[host]] table per student")
    hosts: list[Host] = []
    seen: dict[tuple[str, int], Host] = {}
    students: dict[str, Host] = {}
    for index, table in enumerate(raw_hosts):
        check_keys(table, "host", index, {"address", "profile", "student", "bugs", "key_file", "python",
                                          "kit_dir", "min_free_gb"})
        line = lines.of("host", index)
        address = typed(table, "host", index, "address", str, None)
        if address is None:
            fail(line, "this [[host]] has no 'address' (user@host or user@host:port)")
        match = ADDRESS.match(address)
        aline = lines.of("host", index, "address")
        if not match:
            fail(aline, f"address {address!r} is not user@host or user@host:port")
        port = int(match["port"] or 22)
        if not 1 <= port <= 65535:
            fail(aline, f"address {address!r}: port {port} is out of range")
        profile = typed(table, "host", index, "profile", str, None)
        if profile not in PROFILES:
            fail(lines.of("host", index, "profile"), f"'profile' must be one of {', '.join(PROFILES)}, not {profile!r}")
        student = typed(table, "host", index, "student", str, None)
        if not student or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", student):
            fail(lines.of("host", index, "student"),
                 f"'student' must be a name of letters, digits, '.', '_' or '-' (it names their submission folder), not {student!r}")
        hostname = match["host"].strip("[]")
        key = (hostname.lower(), port)
        if key in seen:
            fail(line, f"duplicate host {hostname}:{port}: already on line {seen[key].line}")
        if student in students:
            fail(lines.of("host", index, "student"), f"duplicate student '{student}': already on line {students[student].line}")
        key_file = typed(table, "host", index, "key_file", str, class_key)
        bugs = bug_list(table, "host", index)
        min_free = table.get("min_free_gb")
        if min_free is not None:
            min_free = float(typed(table, "host", index, "min_free_gb", (int, float), 0))
        host = Host(
            name=address, user=match["user"], hostname=hostname, port=port, profile=profile, student=student,
            bugs=class_bugs if bugs is None else bugs,
            key_file=local_path(key_file) if key_file else None,
            python=typed(table, "host", index, "python", str, class_python),
            kit_dir=typed(table, "host", index, "kit_dir", str, class_kit),
            min_free_gb=min_free, line=line,
        )
        seen[key] = host
        students[student] = host
        hosts.append(host)
    return Inventory(path=path, hosts=tuple(hosts), known_hosts=known_hosts, devstack=devstack, lab=lab,
                     connect_timeout=timeout, min_python=min_python,
                     class_id=typed(klass, "class", 0, "class_id", str, None),
                     cloud=typed(klass, "class", 0, "cloud", str, None))
