"""A DevStack host as the student's notebooks see it: nova in `/opt/stack/nova`, run by
DevStack's Python as systemd units (`devstack@n-api`, ...), each unit's `breakpoint()`
opening remote-pdb on a loopback port of its own (provisioning's drop-ins).

`debuglab provision` writes `<stack_dir>/.debuglab/site.toml` on each DevStack host; the
JupyterLab of that host (`debuglab notebook start --devstack STACK_DIR`) keeps its token,
pidfile and log in `<stack_dir>/.debuglab/jupyter/`, serves the kit's `labs/devstack/`
and runs the kernel `debuglab-devstack`: DevStack's own interpreter, so a notebook
imports exactly the nova, oslo and client code the units run. Only ipykernel comes from
the kit's venv, put at the end of sys.path where DevStack's packages win every clash.
"""

from __future__ import annotations

import json
import os
import re
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

from debuglab.core.files import write_atomic
from debuglab.notebooks.errors import SiteError

SITE_TOML = "site.toml"
META = ".debuglab"  # <stack_dir>/.debuglab: provisioning's state and this site


@dataclass(frozen=True)
class DevstackSite:
    stack_dir: Path  # /opt/stack
    python: Path  # DevStack's interpreter: /opt/stack/data/venv/bin/python
    services: tuple[tuple[str, int], ...]  # (systemd unit, its remote-pdb port on 127.0.0.1)
    restart_command: str  # "sudo systemctl restart {units}"
    journal_command: str  # "sudo journalctl -u {unit} -n {lines} --no-pager"
    clouds_yaml: Path  # DevStack's /etc/openstack/clouds.yaml
    nova_conf: Path  # /etc/nova/nova.conf: what the units read
    config_command: str  # sets one option of nova_conf: "... iniset -sudo ... {section} {option} {value}"

    @property
    def root(self) -> Path:
        """Where the site file and its JupyterLab's state live."""
        return self.stack_dir / META

    @property
    def nova(self) -> Path:
        return self.stack_dir / "nova"

    @classmethod
    def open(cls, stack_dir: Path) -> "DevstackSite":
        path = Path(os.path.expanduser(stack_dir)).absolute() / META / SITE_TOML
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise SiteError(f"{path}: no DevStack site here; `debuglab provision` writes it on a devstack host "
                            f"(is {stack_dir} DevStack's stack folder?)") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SiteError(f"{path}: unreadable ({exc}); run `debuglab provision` for this host again") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "DevstackSite":
        def text(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise SiteError(f"{where}: '{key}' must be a non-empty string, not {value!r}")
            return value

        services = data.get("services")
        if not isinstance(services, dict) or not services:
            raise SiteError(f"{where}: 'services' must be a table of systemd unit = remote-pdb port")
        for unit, port in services.items():
            if not re.fullmatch(r"[A-Za-z0-9@_.:-]+", unit) or isinstance(port, bool) or not isinstance(port, int):
                raise SiteError(f"{where}: services: {unit!r} = {port!r} is not a unit name and a port number")
        if "{units}" not in text("restart_command"):
            raise SiteError(f"{where}: 'restart_command' must contain {{units}}")
        if "{unit}" not in text("journal_command"):
            raise SiteError(f"{where}: 'journal_command' must contain {{unit}}")
        if not all(f"{{{k}}}" in text("config_command") for k in ("section", "option", "value")):
            raise SiteError(f"{where}: 'config_command' must contain {{section}}, {{option}} and {{value}}")
        return cls(stack_dir=Path(text("stack_dir")), python=Path(text("python")),
                   services=tuple(services.items()), restart_command=text("restart_command"),
                   journal_command=text("journal_command"), clouds_yaml=Path(text("clouds_yaml")),
                   nova_conf=Path(text("nova_conf")), config_command=text("config_command"))

    def to_toml(self) -> str:
        # by hand: provisioning writes it with the host's bare python3 (standard library
        # only); a JSON string is a valid TOML basic string
        fields = {"stack_dir": str(self.stack_dir), "python": str(self.python),
                  "restart_command": self.restart_command, "journal_command": self.journal_command,
                  "clouds_yaml": str(self.clouds_yaml), "nova_conf": str(self.nova_conf),
                  "config_command": self.config_command}
        return ("# written by debuglab provision: what this DevStack host's notebooks use\n"
                + "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items())
                + "\n[services]  # systemd unit = its remote-pdb port on 127.0.0.1\n"
                + "".join(f"{json.dumps(unit)} = {port}\n" for unit, port in self.services))

    def write(self) -> bool:
        """Write the site file (temp file, then rename); False when it already says this."""
        path = self.root / SITE_TOML
        text = self.to_toml()
        if path.is_file() and path.read_text() == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        return True


def kernel_code(site_packages: str, *, launch: bool = True) -> str:
    """What DevStack's python runs as the kernel: ipykernel reachable after everything
    DevStack has. `launch=False`: only the imports (provisioning's check that it starts)."""
    code = f"import sys; sys.path.append({site_packages!r}); from ipykernel import kernelapp"
    return code + "; kernelapp.launch_new_instance()" if launch else code


def kit_site_packages() -> str:
    """The site-packages of the venv this debuglab runs from (where ipykernel is)."""
    return sysconfig.get_paths()["purelib"]


def kernel_argv(site: DevstackSite) -> list[str]:
    return [str(site.python), "-c", kernel_code(kit_site_packages()), "-f", "{connection_file}"]


def kernel_env(site: DevstackSite) -> dict[str, str]:
    """What the DevStack notebooks read: the stack, the units and their ports, how to
    restart a unit and read its journal, DevStack's clouds.yaml, the nova.conf the units
    read and how to set one of its options."""
    return {
        "DEBUGLAB_STACK": str(site.stack_dir),
        "DEBUGLAB_UNITS": ",".join(f"{unit}={port}" for unit, port in site.services),
        "DEBUGLAB_RESTART": site.restart_command,
        "DEBUGLAB_JOURNAL": site.journal_command,
        "OS_CLIENT_CONFIG_FILE": str(site.clouds_yaml),
        "DEBUGLAB_NOVA_CONF": str(site.nova_conf),
        "DEBUGLAB_CONFIG_SET": site.config_command,
    }
