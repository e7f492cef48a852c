"""The mini-cloud's service launcher. It runs under the LAB's python (never debuglab's):
`python launcher.py keystone|nova|g-api|q-svc <cloud-dir>`.

It imports nothing from debuglab: everything it needs is in `<cloud-dir>/settings.json`,
written by debuglab.cloud.config. Each service has its module in `services/` (loaded from
this folder under the name `debuglab_cloud_services`, as the lab's python does not have
debuglab on its path); this file only picks one and runs it. Four processes make the cloud, each served by a
threaded WSGI server on 127.0.0.1:

- keystone: keystone's own WSGI application (`initialize_public_application`), its
  database synced, fernet keys and the bootstrap (users, projects, catalog) done in
  process.
- nova: on nova's threading backend, the API (`wsgi_app.init_application`, the stock
  api-paste.ini), conductor, scheduler and compute (`Service.create(...).start()`, the
  fake virt driver) and placement (its own app), sharing the in-memory `fake:/`
  message bus. nova reaches glance and neutron over HTTP with its own clients.
- g-api: glance-api's WSGI application (`glance.common.wsgi_app.init_app`), SQLite and
  the file store in the cloud's folder; DevStack's cirros image at the first start.
- q-svc: neutron's API (`neutron.server.boot_server(api_server)`), ML2 with flat and
  local networks and an agentless mechanism driver (ml2.py); DevStack's `public`,
  `private` and `router1` at the first start.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

PACKAGE = "debuglab_cloud_services"
RUNS = {"keystone": "keystone:run_keystone", "nova": "nova:run_nova", "g-api": "glance:run_glance",
        "q-svc": "neutron:run_neutron"}


def services_package():
    """`services/` as a package of its own name, whatever this folder's place on disk."""
    if PACKAGE not in sys.modules:
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "services")
        spec = importlib.util.spec_from_file_location(PACKAGE, os.path.join(folder, "__init__.py"),
                                                      submodule_search_locations=[folder])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return sys.modules[PACKAGE]


def service(name: str):
    """The module `services/<name>.py`."""
    services_package()
    return importlib.import_module(f"{PACKAGE}.{name}")


def main(argv: list[str]) -> None:
    kind, cloud_dir = argv[1], argv[2]
    if kind not in RUNS:
        raise SystemExit(f"unknown service {kind!r}")
    settings = service("process").load_settings(cloud_dir)
    service("stackroom").stack_room_for_every_thread()
    sys.argv = [f"debuglab-{kind}"]  # the services parse sys.argv as their command line
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    module, function = RUNS[kind].split(":")
    getattr(service(module), function)(settings)


if __name__ == "__main__":
    main(sys.argv)
