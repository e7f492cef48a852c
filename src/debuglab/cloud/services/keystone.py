"""keystone: its own WSGI application, database synced, fernet keys and the bootstrap done in process.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import os

from .process import mock_load_backends, serve_until_stopped, write_json
from .settings import LauncherSettings
from .sqlite import sqlite_pooled_connections, sqlite_serving
from .wsgi import serve


def run_keystone(settings: LauncherSettings) -> None:
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = settings.keystone.conf
    import oslo_service.backend as oslo_backend

    oslo_backend.init_backend(oslo_backend.BackendType.THREADING)
    _fernet_setup(settings)
    from keystone.server import wsgi as keystone_wsgi

    sqlite_pooled_connections()
    app = keystone_wsgi.initialize_public_application()

    from keystone.common.sql import upgrades

    if not os.path.exists(settings.keystone.synced_marker):
        upgrades.offline_sync_database_to_version()
        open(settings.keystone.synced_marker, "w").close()
    _keystone_bootstrap(settings)
    # concurrent clients wait for one another instead of getting 500 "database is locked"
    sqlite_serving([os.path.join(settings.cloud_dir, "keystone.sqlite")])
    serve(app, settings.ports["keystone"], "keystone")
    serve_until_stopped(settings, "keystone")


def _fernet_setup(settings: LauncherSettings) -> None:
    """keystone-manage fernet_setup and credential_setup (before keystone loads its
    token provider, which wants the keys)."""
    from keystone.common import fernet_utils

    uid, gid = os.getuid(), os.getgid()
    for group, repository in (("fernet_tokens", settings.keystone.fernet_keys),
                              ("credential", settings.keystone.credential_keys)):
        futils = fernet_utils.FernetUtils(repository, 3, group)
        if os.path.isdir(repository) and os.listdir(repository):
            continue
        futils.create_key_directory(uid, gid)
        if futils.validate_key_repository(requires_write=True):
            futils.initialize_key_repository(uid, gid)


def _keystone_bootstrap(settings: LauncherSettings) -> None:
    """keystone-manage bootstrap's own logic, then the lab's users, projects and catalog.
    Idempotent: it runs at every start (so that changed ports reach the catalog)."""
    from keystone import exception
    from keystone.cmd import bootstrap
    from keystone.common import driver_hints, provider_api

    providers = provider_api.ProviderAPIs
    users = settings.users
    ports = settings.ports
    region = settings.region

    def bootstrapper():
        # keystone-manage's Bootstrapper, without its __init__'s second load_backends()
        # (the running application has loaded and locked them already)
        b = bootstrap.Bootstrapper.__new__(bootstrap.Bootstrapper)
        with mock_load_backends(bootstrap):
            b.__init__()
        return b

    boot = bootstrapper()
    boot.admin_username = "admin"
    boot.admin_password = users["admin"]
    boot.project_name = "admin"
    boot.admin_role_name = "admin"
    boot.region_id = region
    boot.service_name = "keystone"
    url = f"http://127.0.0.1:{ports['keystone']}/v3"
    boot.public_url = boot.internal_url = boot.admin_url = url
    boot.bootstrap()
    roles = {"admin": boot.admin_role_id, "member": boot.member_role_id, "service": boot.service_role_id,
             "reader": boot.reader_role_id}

    def grant(user_name: str, password: str, project_name: str, role_names: list[str]) -> str:
        b = bootstrapper()
        b.default_domain_id = boot.default_domain_id
        b.project_name = project_name
        b._bootstrap_project()
        b.admin_username = user_name
        b.admin_password = password
        b._bootstrap_admin_user()
        for role in role_names:
            try:
                providers.assignment_api.add_role_to_user_and_project(
                    user_id=b.admin_user_id, project_id=b.project_id, role_id=roles[role])
            except exception.Conflict:
                pass
        return b.project_id

    projects = {"admin": boot.project_id, "demo": grant("demo", users["demo"], "demo", ["member"])}
    for service_user in ("nova", "placement", "glance", "neutron"):
        grant(service_user, users[service_user], "service", ["admin", "service"])
    write_json(os.path.join(settings.cloud_dir, PROJECTS_FILE), projects)

    catalog = providers.catalog_api
    for stype, name, port, path in (("compute", "nova", ports["nova"], "/v2.1"),
                                    ("placement", "placement", ports["placement"], ""),
                                    ("image", "glance", ports["image"], ""),
                                    ("network", "neutron", ports["network"], "")):
        endpoint_url = f"http://127.0.0.1:{port}{path}"
        hints = driver_hints.Hints()
        hints.add_filter("type", stype)
        services = catalog.list_services(hints)
        if services:
            service_id = services[0]["id"]
        else:
            import uuid

            service_id = uuid.uuid4().hex
            catalog.create_service(service_id, {"id": service_id, "name": name, "type": stype, "enabled": True})
        hints = driver_hints.Hints()
        hints.add_filter("service_id", service_id)
        existing = {e["interface"]: e for e in catalog.list_endpoints(hints)}
        for interface in ("public", "internal", "admin"):
            if interface in existing:
                if existing[interface]["url"] != endpoint_url:
                    ref = dict(existing[interface], url=endpoint_url)
                    catalog.update_endpoint(endpoint_id=ref["id"], endpoint_ref=ref)
                continue
            import uuid

            ref = {"id": uuid.uuid4().hex, "interface": interface, "url": endpoint_url,
                   "service_id": service_id, "enabled": True, "region_id": region}
            catalog.create_endpoint(endpoint_id=ref["id"], endpoint_ref=ref)


PROJECTS_FILE = "projects.json"  # Keystone's project ids by name, for the nova process
