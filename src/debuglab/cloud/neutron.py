"""The mini-cloud's network service: a small, read-only neutron v2.0 endpoint on loopback
over nova's own `NeutronFixture` (the stand-in nova's functional tests use for neutron).

With it the clients work as on DevStack: `openstack network list`, `openstack server
create --network private ...` (the client resolves the network's name here), `openstack
port list --server vm1`, `openstack security group list`. It shows the very networks,
subnets, ports and security groups nova uses: the fixture's dicts, read under the lock
that network.py's PortStore takes for every change nova makes.

Writes are not served: nova creates, binds and deletes its ports in the fixture itself.
Tokens are checked by keystonemiddleware, as neutron does; neutron's default policy is
followed where it matters here: an admin sees everything, a project sees its own
networks, subnets, ports and security groups plus the shared networks and their subnets,
and a port's binding details (host, VIF) are the admin's. Unknown ids get neutron's 404
(`{"NeutronError": {"type": "NetworkNotFound", ...}}`), unknown filters its 400.

It runs in the nova process under the lab's python and imports nothing from debuglab.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from urllib.parse import parse_qsl, unquote

LOG = logging.getLogger("debuglab.wsgi.network")

# the resources served: URL collection -> (singular, neutron's NotFound type and message)
RESOURCES = {
    "networks": ("network", "NetworkNotFound", "Network {id} could not be found."),
    "subnets": ("subnet", "SubnetNotFound", "Subnet {id} could not be found."),
    "ports": ("port", "PortNotFound", "Port {id} could not be found."),
    "security-groups": ("security_group", "SecurityGroupNotFound", "Security group {id} does not exist"),
    "security-group-rules": ("security_group_rule", "SecurityGroupRuleNotFound",
                             "Security group rule {id} does not exist"),
}
OWNER = ("tenant_id", "project_id")
# the attributes neutron accepts as filters, per collection (a list value matches any of its items)
FILTERS = {
    "networks": ("id", "name", "description", "status", "admin_state_up", "shared", "mtu", "router:external",
                 "port_security_enabled", "provider:network_type", "provider:physical_network",
                 "provider:segmentation_id", *OWNER),
    "subnets": ("id", "name", "description", "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp",
                "ipv6_address_mode", "ipv6_ra_mode", "subnetpool_id", *OWNER),
    "ports": ("id", "name", "description", "network_id", "device_id", "device_owner", "mac_address", "status",
              "admin_state_up", "fixed_ips", "security_groups", "binding:host_id", "binding:vnic_type",
              "port_security_enabled", *OWNER),
    "security-groups": ("id", "name", "description", "stateful", *OWNER),
    "security-group-rules": ("id", "security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                             "port_range_max", "remote_group_id", "remote_ip_prefix", "description", *OWNER),
}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
CONTROLS = ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse")
# a port's binding details, which neutron's policy shows to admins only
ADMIN_ONLY_PORT_FIELDS = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details",
                          "resource_request")
# the API extensions whose resources or attributes this endpoint really serves
EXTENSIONS = (
    ("security-group", "security-group", "The security groups extension."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
)


class NeutronError(Exception):
    """A request neutron refuses: HTTP status, neutron's error type and message."""

    def __init__(self, status: str, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.kind = kind

    def body(self) -> dict:
        return {"NeutronError": {"type": self.kind, "message": str(self), "detail": ""}}


def not_found(collection: str, resource_id: str) -> NeutronError:
    _, kind, message = RESOURCES[collection]
    return NeutronError("404 Not Found", kind, message.format(id=resource_id))


class Caller:
    """Who is asking, from keystonemiddleware's headers."""

    def __init__(self, project: str | None, roles=()):
        self.project = project
        self.roles = {r.strip().lower() for r in roles if r.strip()}

    @classmethod
    def from_environ(cls, environ: dict) -> "Caller":
        return cls(environ.get("HTTP_X_PROJECT_ID"), environ.get("HTTP_X_ROLES", "").split(","))

    @property
    def admin(self) -> bool:
        return "admin" in self.roles

    def owns(self, resource: dict) -> bool:
        return self.admin or self.project in (resource.get("project_id"), resource.get("tenant_id"))


# --------------------------------------------------------------------------- pure functions


def visible(collection: str, resource: dict, caller: Caller, networks: dict) -> bool:
    """neutron's default read policy: the admin sees all, a project its own resources,
    plus shared networks and the subnets of shared networks."""
    if caller.owns(resource):
        return True
    if collection == "networks":
        return bool(resource.get("shared"))
    if collection == "subnets":
        return bool((networks.get(resource.get("network_id")) or {}).get("shared"))
    return False


def as_shown(collection: str, resource: dict, caller: Caller) -> dict:
    """The resource as neutron shows it to the caller: the fields every resource has
    (tags), a port's binding details only to an admin."""
    out = copy.deepcopy(resource)
    out.setdefault("tags", [])
    if collection == "ports" and not caller.admin:
        for key in ADMIN_ONLY_PORT_FIELDS:
            out.pop(key, None)
    return out


def parse_query(query_string: str) -> dict[str, list[str]]:
    """A query string as neutron reads it: a key given twice is a list of values (any matches)."""
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    return query


def _as_bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise NeutronError("400 Bad Request", "HTTPBadRequest",
                       f"Invalid input for {key}. Reason: '{value}' cannot be converted to boolean.")


def _matches(key: str, have, wanted: list[str]) -> bool:
    """Whether an attribute's value matches any of the wanted (string) values."""
    if key == "fixed_ips":  # fixed_ips=ip_address=10.0.0.3 / fixed_ips=subnet_id=...
        for want in wanted:
            field, _, value = want.partition("=")
            if field not in ("ip_address", "subnet_id"):
                raise NeutronError("400 Bad Request", "HTTPBadRequest",
                                   f"Invalid input for fixed_ips: {want!r} (use ip_address=... or subnet_id=...)")
            if any(ip.get(field) == value for ip in have or []):
                return True
        return False
    if isinstance(have, bool):
        return any(_as_bool(key, w) == have for w in wanted)
    if isinstance(have, int):
        return any(w.strip().lstrip("-").isdigit() and int(w) == have for w in wanted)
    if isinstance(have, list):
        return any(w in have for w in wanted)
    if have is None:
        return False
    return str(have) in wanted


def select(collection: str, resources: list[dict], query: dict[str, list[str]]) -> list[dict]:
    """neutron's list filters: every given attribute must match (one of its values); an
    attribute neutron does not filter on is refused, as its filter validation does."""
    for key in query:
        if key not in FILTERS[collection] and key not in TAG_FILTERS and key not in CONTROLS:
            raise NeutronError("400 Bad Request", "HTTPBadRequest", f"[{key}] is invalid attribute for filtering")
    chosen = []
    for resource in resources:
        if all(_matches(key, resource.get(key), values) for key, values in query.items()
               if key in FILTERS[collection]) and _tagged(resource.get("tags") or [], query):
            chosen.append(resource)
    return chosen


def _tagged(tags: list[str], query: dict[str, list[str]]) -> bool:
    def wanted(key):
        return [t for value in query.get(key, []) for t in value.split(",") if t]

    if "tags" in query and not all(t in tags for t in wanted("tags")):
        return False
    if "tags-any" in query and not any(t in tags for t in wanted("tags-any")):
        return False
    if "not-tags" in query and all(t in tags for t in wanted("not-tags")):
        return False
    if "not-tags-any" in query and any(t in tags for t in wanted("not-tags-any")):
        return False
    return True


def only_fields(resource: dict, fields: list[str]) -> dict:
    """`?fields=id&fields=name`: only those attributes (all of them when none is asked for)."""
    wanted = [f for value in fields for f in value.split(",") if f]
    return {k: v for k, v in resource.items() if k in wanted} if wanted else resource


def page(collection: str, resources: list[dict], query: dict[str, list[str]], base_url: str) -> dict:
    """Sorting (sort_key/sort_dir) and pagination (limit/marker, with the `<collection>_links`
    neutron gives when a page is full)."""
    keys = query.get("sort_key") or []
    dirs = query.get("sort_dir") or []
    for i in reversed(range(len(keys))):
        reverse = (dirs[i] if i < len(dirs) else "asc").lower() == "desc"
        resources = sorted(resources, key=lambda r: (r.get(keys[i]) is None, str(r.get(keys[i]))), reverse=reverse)
    name = collection.replace("-", "_")
    if "limit" not in query and "marker" not in query:
        return {name: resources}
    if not keys:
        resources = sorted(resources, key=lambda r: r["id"])
    if "marker" in query:
        ids = [r["id"] for r in resources]
        marker = query["marker"][-1]
        resources = resources[ids.index(marker) + 1:] if marker in ids else []
    body: dict = {name: resources}
    if "limit" in query:
        try:
            limit = int(query["limit"][-1])
        except ValueError:
            raise NeutronError("400 Bad Request", "HTTPBadRequest",
                               f"Limit must be an integer 0 or greater and not '{query['limit'][-1]}'") from None
        if limit > 0 and len(resources) > limit:
            body[name] = resources[:limit]
            after = resources[limit - 1]["id"]
            next_page = f"{base_url}/v2.0/{collection}?limit={limit}&marker={after}"
            body[f"{name}_links"] = [{"rel": "next", "href": next_page}]
    return body


# --------------------------------------------------------------------------- the fixture


class FixtureView:
    """What the API reads from nova's NeutronFixture: copies, taken under `lock` (the
    PortStore's, held by every change nova makes to the fixture's ports)."""

    def __init__(self, neutron, lock=None):
        self.neutron = neutron
        self.lock = lock or contextlib.nullcontext()

    def networks(self) -> dict:
        return self.neutron._networks

    def all(self, collection: str) -> list[dict]:
        fixture = self.neutron
        with self.lock:
            if collection == "networks":
                return copy.deepcopy(list(fixture._networks.values()))
            if collection == "subnets":
                return copy.deepcopy(list(fixture._subnets.values()))
            if collection == "ports":
                ports = copy.deepcopy(list(fixture._ports.values()))
                for port in ports:
                    fixture._merge_in_active_binding(port)
                return ports
            if collection == "security-groups":
                return [self._with_rules(group) for group in fixture._security_groups.values()]
            if collection == "security-group-rules":
                return list(self._rules().values())
        raise KeyError(collection)

    def _rules(self) -> dict:
        return copy.deepcopy(fixture_rules(self.neutron))

    def _with_rules(self, group: dict) -> dict:
        rules = self._rules()
        out = copy.deepcopy(group)
        out["security_group_rules"] = [rules.get(r, {"id": r}) if isinstance(r, str) else r
                                       for r in group.get("security_group_rules", [])]
        out.setdefault("stateful", True)
        out.setdefault("shared", False)
        return out


def give_to_project(neutron, project_id: str) -> None:
    """Hand the fixture's network, its subnets and its security group to a project, as
    DevStack creates `private` in the demo project. The fixture gives them the project id
    of nova's functional tests, which no Keystone project has."""
    for group in (neutron._networks, neutron._subnets, neutron._security_groups):
        for resource in group.values():
            resource["project_id"] = resource["tenant_id"] = project_id
    for rule in fixture_rules(neutron).values():
        rule["project_id"] = rule["tenant_id"] = project_id


def fixture_rules(neutron) -> dict:
    """The fixture's security group rules by id (its class attributes security_group_rule_*,
    which its security group names by id only)."""
    rules = {}
    for name in dir(type(neutron)):
        rule = getattr(neutron, name)
        if name.startswith("security_group_rule_") and isinstance(rule, dict) and "id" in rule:
            rules[rule["id"]] = rule
    return rules


# --------------------------------------------------------------------------- the API


def versions(port: int) -> dict:
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"http://127.0.0.1:{port}/v2.0/"}]}]}


def _resources_index(port: int) -> dict:
    base = f"http://127.0.0.1:{port}/v2.0"
    return {"resources": [{"name": singular, "collection": collection.replace("-", "_"),
                           "links": [{"rel": "self", "href": f"{base}/{collection}"}]}
                          for collection, (singular, _, _) in RESOURCES.items()]}


def _extension(alias: str, name: str, description: str) -> dict:
    return {"alias": alias, "name": name, "description": description, "updated": "2013-02-03T10:00:00-00:00",
            "links": []}


def make_app(view: FixtureView, port: int, authenticate=lambda app: app):
    """The WSGI application: version discovery without a token (as neutron), the rest
    behind `authenticate` (keystonemiddleware's auth_token in the cloud)."""

    def v2(environ, start_response):
        try:
            status, body = route(view, port, environ, Caller.from_environ(environ))
        except NeutronError as exc:
            status, body = exc.status, exc.body()
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    protected = authenticate(v2)

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").rstrip("/") == "" and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            data = json.dumps(versions(port)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return protected(environ, start_response)

    return app


def route(view: FixtureView, port: int, environ: dict, caller: Caller):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "").rstrip("/")
    if path.endswith(".json"):  # python-neutronclient's habit
        path = path[:-len(".json")]
    parts = [unquote(p) for p in path.split("/")[1:]]
    if parts[:1] != ["v2.0"]:
        raise NeutronError("404 Not Found", "HTTPNotFound", f"The resource could not be found: {path}")
    parts = parts[1:]
    if method not in ("GET", "HEAD"):
        raise NeutronError("405 Method Not Allowed", "HTTPMethodNotAllowed",
                           f"{method} {path}: the lab's network service is read-only (nova creates, binds and "
                           "deletes its ports itself: openstack server create --network private ...)")
    if not parts:
        return "200 OK", _resources_index(port)
    if parts[0] == "extensions":
        known = {alias: _extension(alias, name, text) for alias, name, text in EXTENSIONS}
        if len(parts) == 1:
            return "200 OK", {"extensions": list(known.values())}
        if len(parts) == 2 and parts[1] in known:
            return "200 OK", {"extension": known[parts[1]]}
        raise NeutronError("404 Not Found", "HTTPNotFound", f"Extension with alias {parts[1]} does not exist")
    collection = parts[0]
    if collection not in RESOURCES or len(parts) > 2:
        raise NeutronError("404 Not Found", "HTTPNotFound", f"The resource could not be found: {path}")
    query = parse_query(environ.get("QUERY_STRING", ""))
    networks = view.networks()
    mine = [as_shown(collection, r, caller) for r in view.all(collection) if visible(collection, r, caller, networks)]
    fields = query.get("fields", [])
    if len(parts) == 2:
        found = [r for r in mine if r["id"] == parts[1]]
        if not found:
            raise not_found(collection, parts[1])
        return "200 OK", {RESOURCES[collection][0]: only_fields(found[0], fields)}
    body = page(collection, select(collection, mine, query), query, f"http://127.0.0.1:{port}")
    name = collection.replace("-", "_")
    body[name] = [only_fields(r, fields) for r in body[name]]
    return "200 OK", body
