"""What the launcher needs to run a service, written by debuglab.cloud.config as
`<cloud-dir>/settings.json` and read here: the one contract between the kit and the
cloud's processes. Standard library only (both sides import it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class KeystoneFiles:
    conf: str
    synced_marker: str  # exists once the database is synced
    fernet_keys: str
    credential_keys: str


@dataclass(frozen=True)
class NovaFiles:
    conf_dir: str
    api_paste: str  # the checkout's own etc/nova/api-paste.ini
    prepared_marker: str  # exists once the databases, cells and flavors are made
    cell0_connection: str


@dataclass(frozen=True)
class PlacementFiles:
    conf: str


@dataclass(frozen=True)
class GlanceFiles:
    conf_dir: str
    synced_marker: str  # exists once the database is synced and cirros uploaded
    paste: str


@dataclass(frozen=True)
class NeutronFiles:
    conf_dir: str
    files: str  # oslo.config's files, `;`-separated, in conf_dir
    plugins: str  # the agentless ML2 driver and its entry point
    prepared_marker: str  # exists once DevStack's networks are made


@dataclass(frozen=True)
class Debugger:
    kind: str  # remote-pdb, pycharm or debugpy
    port: int


@dataclass(frozen=True)
class Override:
    """One option of local.conf, so that a service can say which ones it does not know."""

    file: str
    section: str
    option: str
    where: str  # local.conf:LINE


@dataclass(frozen=True)
class LauncherSettings:
    cloud_dir: str
    logs_dir: str
    ports: dict[str, int]  # keystone, nova, placement, image, network
    region: str
    users: dict[str, str]  # user name -> password
    breakpoint_port: int  # breakpoint()'s first remote-pdb port
    keystone: KeystoneFiles
    nova: NovaFiles
    placement: PlacementFiles
    glance: GlanceFiles
    neutron: NeutronFiles
    debug: Debugger | None = None
    overrides: tuple[Override, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LauncherSettings":
        data = json.loads(text)
        parts = {"keystone": KeystoneFiles, "nova": NovaFiles, "placement": PlacementFiles, "glance": GlanceFiles,
                 "neutron": NeutronFiles}
        for name, kind in parts.items():
            data[name] = kind(**data[name])
        data["debug"] = Debugger(**data["debug"]) if data.get("debug") else None
        data["overrides"] = tuple(Override(**o) for o in data.get("overrides") or ())
        return cls(**data)
