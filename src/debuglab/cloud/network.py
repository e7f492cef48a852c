"""What the mini-cloud's neutron stand-in (nova's own `NeutronFixture`) knows about ports,
kept on disk so that it survives `cloud restart`, as neutron's database would.

The fixture holds its ports and port bindings in memory. Without this, a restart forgot
every port: servers created before it lost their addresses at the next refresh of their
network info, and the first port created after it reused the fixture's template port
(same id and MAC address) and failed nova's unique MAC check.

The fixture is made for nova's functional tests, where every request comes from one
project and one port per test is enough: it gives every new port its template's project
and address. Here a port gets the project nova asked for (or nova would not find it
when it lists the server's ports: no addresses) and the next free address of its subnet.

It runs in the nova process under the lab's python and imports nothing from debuglab.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading

LOG = logging.getLogger("debuglab.network")

# the fixture's methods that change ports or bindings (nova calls them through the
# fixture's neutron client, which forwards every other call to the fixture)
CHANGES = ("create_port", "update_port", "delete_port", "create_port_binding", "delete_port_binding",
           "activate_port_binding")


class PortStore:
    """Load the fixture's ports and bindings from `state_file`; save after every change."""

    def __init__(self, neutron, state_file: str):
        self.neutron = neutron
        self.state_file = state_file
        self.lock = threading.RLock()
        self._load()
        fixture_create = neutron.create_port
        neutron.create_port = lambda body=None: self._as_requested(fixture_create(body), body or {})
        for name in CHANGES:
            setattr(neutron, name, self._saving(getattr(neutron, name)))

    def _as_requested(self, created: dict, body: dict) -> dict:
        """The fixture's new port, with the requested project and a free address."""
        import ipaddress

        asked = body.get("port") or {}
        port = self.neutron._ports[created["port"]["id"]]
        project = asked.get("project_id") or asked.get("tenant_id")
        if project:
            port["project_id"] = port["tenant_id"] = project
        if not asked.get("fixed_ips"):
            fixed = []
            for ip in port.get("fixed_ips") or []:
                subnet = self.neutron._subnets.get(ip.get("subnet_id"))
                if not subnet or ipaddress.ip_network(subnet["cidr"], strict=False).version != 4:
                    fixed.append(ip)
                    continue
                used = {i.get("ip_address") for p in self.neutron._ports.values() if p is not port
                        for i in p.get("fixed_ips") or []}
                used.add(subnet.get("gateway_ip"))
                hosts = ipaddress.ip_network(subnet["cidr"], strict=False).hosts()
                free = next(str(a) for a in hosts if str(a) not in used)
                fixed.append(dict(ip, ip_address=free))
            port["fixed_ips"] = fixed
        return {"port": copy.deepcopy(port)}

    def _saving(self, method):
        def wrapper(*args, **kwargs):
            with self.lock:
                try:
                    return method(*args, **kwargs)
                finally:  # a failed change may have changed something before failing
                    self.save()

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    def _load(self) -> None:
        try:
            with open(self.state_file) as fh:
                stored = json.load(fh)
        except FileNotFoundError:
            return
        self.neutron._ports.clear()
        self.neutron._ports.update(stored["ports"])
        self.neutron._port_bindings.clear()
        self.neutron._port_bindings.update(stored["bindings"])
        LOG.info("neutron stand-in: %d ports restored from %s", len(stored["ports"]), self.state_file)

    def save(self) -> None:
        with self.lock:
            state = {"ports": self.neutron._ports,
                     "bindings": {port: dict(hosts) for port, hosts in self.neutron._port_bindings.items()}}
            text = json.dumps(state, default=str, indent=1, sort_keys=True)
            tmp = f"{self.state_file}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, self.state_file)
