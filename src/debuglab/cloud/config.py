"""Where the mini-cloud keeps its state in a lab, and the files that configure it:
`<lab>/cloud/` (settings.json for the launcher, keystone.conf, nova.conf,
placement.conf, glance-api.conf, neutron.conf and ml2_conf.ini, SQLite databases, the
image store, fernet keys, logs/, the pidfile) and `<lab>/openrc`, `<lab>/clouds.yaml`
for the clients."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from debuglab.cloud import localconf
from debuglab.cloud.services.settings import (
    Debugger,
    GlanceFiles,
    KeystoneFiles,
    LauncherSettings,
    NeutronFiles,
    NovaFiles,
    Override,
    PlacementFiles,
)
from debuglab.core import private
from debuglab.lab.workspace import Workspace

DEFAULT_PORTS = {"keystone": 5000, "nova": 8774, "placement": 8778, "image": 9292, "network": 9696}
DEBUG_KINDS = ("remote-pdb", "pycharm", "debugpy")
DEFAULT_DEBUG_PORTS = {"remote-pdb": 4444, "pycharm": 5678, "debugpy": 5679}
REGION = "RegionOne"
PASSWORD = "secret"  # DevStack's habit; everything listens on loopback only
USERS = {"admin": PASSWORD, "demo": PASSWORD, "nova": PASSWORD, "placement": PASSWORD, "glance": PASSWORD,
         "neutron": PASSWORD}

# the services, the process each runs in (nova's share one), the port each listens on (if
# any), and the code each one runs (for `status --file`)
SERVICES = {
    "keystone": {"process": "keystone", "port": "keystone", "code": ("keystone/",)},
    "n-api": {"process": "nova", "port": "nova", "code": ("nova/api/", "nova/policies/", "nova/compute/api.py")},
    "n-cond": {"process": "nova", "port": None, "code": ("nova/conductor/",)},
    "n-sch": {"process": "nova", "port": None, "code": ("nova/scheduler/",)},
    "n-cpu": {"process": "nova", "port": None,
              "code": ("nova/compute/", "nova/virt/", "nova/network/")},
    "placement": {"process": "nova", "port": "placement", "code": ("placement/",)},
    "g-api": {"process": "g-api", "port": "image", "code": ("glance/",)},
    "q-svc": {"process": "q-svc", "port": "network", "code": ("neutron/",)},
}
ML2_DRIVER = Path(__file__).with_name("services") / "ml2.py"  # copied into the cloud for neutron to load


@dataclass(frozen=True)
class CloudPaths:
    ws: Workspace

    @property
    def dir(self) -> Path:
        return self.ws.root / "cloud"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def etc(self) -> Path:
        return self.dir / "etc"

    @property
    def pidfile(self) -> Path:
        return self.dir / "cloud.pid"

    @property
    def settings(self) -> Path:
        return self.dir / "settings.json"

    @property
    def local_conf(self) -> Path:
        """The student's overrides (DevStack's local.conf): outside cloud/, so that
        `cloud reset` keeps them."""
        return self.ws.root / "local.conf"

    @property
    def openrc(self) -> Path:
        return self.ws.root / "openrc"

    @property
    def clouds_yaml(self) -> Path:
        return self.ws.root / "clouds.yaml"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


@dataclass(frozen=True)
class CloudSettings:
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    debug: str | None = None
    debug_port: int | None = None
    breakpoint_port: int | None = None  # remote-pdb's first port for breakpoint() (the lab's own)

    @property
    def pdb_port(self) -> int:
        """The port a breakpoint() opens first (the next ones up to 9 above it)."""
        if self.debug == "remote-pdb" and self.debug_port:
            return self.debug_port
        return self.breakpoint_port or DEFAULT_DEBUG_PORTS["remote-pdb"]

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['keystone']}/v3"

    def endpoint(self, service: str) -> str:
        path = {"nova": "/v2.1", "keystone": "/v3"}.get(service, "")
        return f"http://127.0.0.1:{self.ports[service]}{path}"


def sqlite(path: Path) -> str:
    # wait for a lock rather than fail at once (the launcher also puts each file in WAL
    # mode, so that readers never block the writer)
    return f"sqlite:///{path}?timeout=30"


def write_all(paths: CloudPaths, settings: CloudSettings) -> None:
    """(Re)write every configuration file; state (databases, keys) is left alone."""
    d = paths.dir
    for sub in (d, paths.logs, paths.etc, d / "state", d / "state" / "instances", d / "locks"):
        private.folder(sub)  # passwords, databases, keys and logs are the lab owner's alone
    for database in d.glob("*.sqlite*"):  # made by an older kit before the cloud ran with a umask
        database.chmod(0o600)
    ports = settings.ports
    keystone_conf = paths.etc / "keystone.conf"
    nova_conf = paths.etc / "nova.conf"
    placement_conf = paths.etc / "placement.conf"
    overrides = localconf.read(paths.local_conf)  # errors before anything is written

    def write_conf(path: Path, text: str) -> None:
        private.write_text(path, localconf.apply(text, overrides, path.name))

    write_conf(keystone_conf, f"""[DEFAULT]
debug = False
use_stderr = True

[database]
connection = {sqlite(d / 'keystone.sqlite')}

[token]
provider = fernet
expiration = 86400

[fernet_tokens]
key_repository = {d / 'fernet-keys'}

[fernet_receipts]
key_repository = {d / 'fernet-keys'}

[credential]
key_repository = {d / 'credential-keys'}

[identity]
# a lab, not production: cheap password hashing keeps token requests fast
password_hash_rounds = 4

[cache]
# without a cache every token validation runs ~300 SQL queries
enabled = True
backend = dogpile.cache.memory
""")

    def auth_section(user: str) -> str:
        return f"""auth_url = {settings.auth_url}
www_authenticate_uri = {settings.auth_url}
auth_type = password
username = {user}
password = {USERS[user]}
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = {REGION}
memcache_use_advanced_pool = False
"""

    write_conf(nova_conf, f"""[DEFAULT]
debug = False
use_stderr = True
host = debuglab
transport_url = fake:/
compute_driver = fake.FakeDriverWithoutFakeNodes
state_path = {d / 'state'}
instances_path = {d / 'state' / 'instances'}
vif_plugging_timeout = 0
vif_plugging_is_fatal = False
instance_usage_audit = False
heal_instance_info_cache_interval = -1
# as DevStack's lib/nova sets on a single node: resize and cold migration to this host
allow_resize_to_same_host = True

[cache]
# nova's own caches (availability zones, EC2 ids) in process memory, as the one-process
# cloud needs. Without [cache] nova asks dogpile for oslo_cache.dict, which dogpile finds
# by loading every dogpile.cache entry point, oslo_cache.memcache_pool too: its missing
# python-memcached logged an ERROR at the first build. dogpile.cache.memory is one of
# dogpile's own backends, loaded by name.
enabled = True
backend = dogpile.cache.memory

[api]
auth_strategy = keystone

[wsgi]
api_paste_config = {paths.ws.checkout('nova') / 'etc' / 'nova' / 'api-paste.ini'}

[api_database]
connection = {sqlite(d / 'nova_api.sqlite')}

[database]
connection = {sqlite(d / 'nova_cell1.sqlite')}

[oslo_concurrency]
lock_path = {d / 'locks'}

[oslo_policy]
enforce_new_defaults = True
enforce_scope = True

[quota]
instances = 1000
cores = -1
ram = -1

[scheduler]
discover_hosts_in_cells_interval = -1

[keystone_authtoken]
{auth_section('nova')}
[placement]
{auth_section('nova')}
[glance]
endpoint_override = {settings.endpoint('image')}
region_name = {REGION}

[neutron]
{auth_section('nova')}endpoint_override = {settings.endpoint('network')}
default_floating_pool = public

[service_user]
# as DevStack: nova's calls on a user's behalf carry nova's own token too, which neutron's
# policy asks for before a compute port is deleted or its binding changed
send_service_user_token = True
{auth_section('nova')}
[notifications]
notification_format = unversioned

[oslo_messaging_notifications]
driver = noop
""")

    write_conf(placement_conf, f"""[DEFAULT]
debug = False

[api]
auth_strategy = keystone

[placement_database]
connection = {sqlite(d / 'placement.sqlite')}

[keystone_authtoken]
{auth_section('placement')}
""")

    glance_conf = paths.etc / "glance-api.conf"
    write_conf(glance_conf, f"""[DEFAULT]
debug = False
use_stderr = True
# the image endpoint's own URL: the glance-direct import of one worker reaches the others'
# staging area through it
worker_self_reference_url = {settings.endpoint('image')}
enabled_backends = fs:file
enabled_import_methods = [glance-direct,web-download]
image_cache_dir = {d / 'glance-cache'}

[database]
connection = {sqlite(d / 'glance.sqlite')}

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = {d / 'images'}

[os_glance_staging_store]
filesystem_store_datadir = {d / 'glance-staging'}

[os_glance_tasks_store]
filesystem_store_datadir = {d / 'glance-tasks'}

[paste_deploy]
flavor = keystone
config_file = {paths.ws.venv / 'etc' / 'glance' / 'glance-api-paste.ini'}

[keystone_authtoken]
{auth_section('glance')}
[oslo_concurrency]
lock_path = {d / 'locks'}
""")

    neutron_conf = paths.etc / "neutron.conf"
    ml2_conf = paths.etc / "ml2_conf.ini"
    write_conf(neutron_conf, f"""[DEFAULT]
debug = False
use_stderr = True
host = debuglab
# keep the process's command line (`cloud stop` knows its processes by it)
setproctitle = off
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = fake:/
api_paste_config = {paths.ws.venv / 'etc' / 'neutron' / 'api-paste.ini'}
state_path = {d / 'state'}
allow_overlapping_ips = True
# nova hears of its ports (network-vif-plugged, network-changed) as on DevStack
notify_nova_on_port_status_changes = True
notify_nova_on_port_data_changes = True
# no DHCP agent runs: nothing would read its messages
dhcp_agent_notification = False

[database]
connection = {sqlite(d / 'neutron.sqlite')}

[cache]
enabled = True
backend = dogpile.cache.memory

[oslo_concurrency]
lock_path = {d / 'locks'}

[keystone_authtoken]
{auth_section('neutron')}
[nova]
{auth_section('neutron')}""")
    write_conf(ml2_conf, """[ml2]
type_drivers = flat,local
tenant_network_types = local
# binds every port on a flat or local network without an agent (cloud/plugins/debuglab_ml2.py)
mechanism_drivers = debuglab
extension_drivers = port_security

[ml2_type_flat]
flat_networks = public

[securitygroup]
enable_security_group = True
""")
    plugins = d / "plugins"
    private.folder(plugins)
    private.write_text(plugins / "debuglab_ml2.py", ML2_DRIVER.read_text())
    private.folder(plugins / "debuglab_ml2-1.0.dist-info")  # how stevedore finds the driver by name
    private.write_text(plugins / "debuglab_ml2-1.0.dist-info" / "METADATA",
                       "Metadata-Version: 2.1\nName: debuglab-ml2\nVersion: 1.0\n")
    private.write_text(plugins / "debuglab_ml2-1.0.dist-info" / "entry_points.txt",
                       "[neutron.ml2.mechanism_drivers]\ndebuglab = debuglab_ml2:AgentlessMechanismDriver\n")

    launcher = LauncherSettings(
        cloud_dir=str(d),
        logs_dir=str(paths.logs),
        ports=ports,
        region=REGION,
        users=USERS,
        debug=Debugger(settings.debug, settings.debug_port) if settings.debug else None,
        breakpoint_port=settings.pdb_port,
        keystone=KeystoneFiles(conf=str(keystone_conf), synced_marker=str(d / "keystone.synced"),
                               fernet_keys=str(d / "fernet-keys"), credential_keys=str(d / "credential-keys")),
        nova=NovaFiles(conf_dir=str(paths.etc),
                       api_paste=str(paths.ws.checkout("nova") / "etc" / "nova" / "api-paste.ini"),
                       prepared_marker=str(d / "nova.prepared"), cell0_connection=sqlite(d / "nova_cell0.sqlite")),
        placement=PlacementFiles(conf=str(placement_conf)),
        glance=GlanceFiles(conf_dir=str(paths.etc), synced_marker=str(d / "glance.synced"),
                           paste=str(paths.ws.venv / "etc" / "glance" / "glance-api-paste.ini")),
        neutron=NeutronFiles(conf_dir=str(paths.etc), files="neutron.conf;ml2_conf.ini", plugins=str(plugins),
                             prepared_marker=str(d / "neutron.prepared")),
        # local.conf's options, so that the services can say which ones they do not know
        overrides=tuple(Override(o.file, o.section, o.option, o.where) for o in overrides),
    )
    private.write_text(paths.settings, launcher.to_json())
    write_client_files(paths, settings)


def write_client_files(paths: CloudPaths, settings: CloudSettings) -> None:
    """`openrc` (DevStack's `source openrc [user] [project]`) and `clouds.yaml`. As in
    DevStack's shell, the clients (`openstack`, `nova`) are on PATH after `source openrc`:
    the lab venv's bin goes first, once however often the file is sourced."""
    bin_dir = shlex.quote(str(paths.ws.venv / "bin"))
    private.write_text(paths.openrc, f"""# debuglab mini-cloud credentials, DevStack style:
#   source openrc            # demo user, demo project
#   source openrc admin admin
# the clients (openstack, nova) of the lab venv, first on PATH (once)
case ":$PATH:" in
  *:{bin_dir}:*) ;;
  *) export PATH={bin_dir}${{PATH:+:$PATH}} ;;
esac
OS_USERNAME_ARG=${{1:-demo}}
OS_PROJECT_ARG=${{2:-$OS_USERNAME_ARG}}
export OS_AUTH_URL={settings.auth_url}
export OS_AUTH_TYPE=password
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$OS_USERNAME_ARG
export OS_PROJECT_NAME=$OS_PROJECT_ARG
export OS_PASSWORD={PASSWORD}
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME={REGION}
unset OS_USERNAME_ARG OS_PROJECT_ARG OS_CLOUD
""")
    entries = []
    for name, user, project in (("devstack", "demo", "demo"), ("devstack-admin", "admin", "admin")):
        entries.append(f"""  {name}:
    auth:
      auth_url: {settings.auth_url}
      username: {user}
      password: {PASSWORD}
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    identity_api_version: 3
""")
    private.write_text(paths.clouds_yaml, "clouds:\n" + "".join(entries))


def client_env(settings: CloudSettings, user: str = "demo", project: str | None = None) -> dict[str, str]:
    """The environment `source openrc user project` gives."""
    return {
        "OS_AUTH_URL": settings.auth_url, "OS_AUTH_TYPE": "password", "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": user, "OS_PROJECT_NAME": project or user, "OS_PASSWORD": PASSWORD,
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": REGION,
    }
