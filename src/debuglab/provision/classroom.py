"""`debuglab class up/down`: one VM per student through python-novaclient, and the
inventory `debuglab provision` reads.

Authentication is the usual OpenStack way, through keystoneauth: a named cloud of
clouds.yaml (./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)
or the OS_* variables. Every server is marked with the class's id in its metadata;
`class down` deletes exactly the servers carrying that mark, nothing else.

A server that goes to ERROR (nova's scheduler found no host, the hypervisor failed) is
deleted and booted once more; a second ERROR is reported for that student with nova's
fault message, and the others go on. A quota refusal says how many servers the quota
let through. With several builds in flight the quota often bites at nova's conductor, which
rechecks it once the other builds are counted and may refuse more servers than the quota
needs: those go to ERROR and are booted again like any other, one round of ERROR servers
deleted before any is booted again, so the class gets what the quota allows. Tested
against the mini-cloud: a real nova API behind real Keystone.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from debuglab.provision.errors import ClassroomError, CloudAuthError, QuotaError

CLASS_KEY = "debuglab-class"
STUDENT_KEY = "debuglab-student"
CLOUDS_YAML = (Path("clouds.yaml"), Path.home() / ".config/openstack/clouds.yaml", Path("/etc/openstack/clouds.yaml"))


@dataclass(frozen=True)
class Credentials:
    auth_type: str
    auth: dict
    region: str | None = None
    interface: str | None = None
    verify: bool | str = True


def credentials(cloud: str | None, env: dict[str, str] | None = None, files: tuple[Path, ...] = CLOUDS_YAML) -> Credentials:
    """A named cloud from clouds.yaml, or (no name) the OS_* variables."""
    env = dict(os.environ if env is None else env)
    if cloud:
        import yaml

        for path in files:
            if path.is_file():
                data = yaml.safe_load(path.read_text()) or {}
                entry = (data.get("clouds") or {}).get(cloud)
                if entry is not None:
                    verify = entry.get("cacert") or entry.get("verify", True)
                    return Credentials(entry.get("auth_type", "password"), dict(entry.get("auth") or {}),
                                       entry.get("region_name"), entry.get("interface"), verify)
        raise ClassroomError(f"no cloud '{cloud}' in {', '.join(str(p) for p in files)}")
    if not env.get("OS_AUTH_URL"):
        raise ClassroomError("no cloud named and no OS_AUTH_URL: pass --cloud NAME (clouds.yaml) or source an openrc")
    auth = {}
    for key, value in env.items():
        if key.startswith("OS_") and key not in ("OS_AUTH_TYPE", "OS_REGION_NAME", "OS_INTERFACE", "OS_CACERT",
                                                 "OS_IDENTITY_API_VERSION", "OS_CLOUD"):
            auth[key[3:].lower()] = value
    return Credentials(env.get("OS_AUTH_TYPE", "password"), auth, env.get("OS_REGION_NAME"),
                       env.get("OS_INTERFACE"), env.get("OS_CACERT") or True)


def nova_client(creds: Credentials):
    from keystoneauth1 import loading, session
    from novaclient import client

    loader = loading.get_plugin_loader(creds.auth_type)
    names = {opt.dest for opt in loader.get_options()}
    unknown = sorted(set(creds.auth) - names)
    if unknown:
        raise ClassroomError(f"auth settings {', '.join(unknown)} do not belong to auth type '{creds.auth_type}'")
    plugin = loader.load_from_options(**creds.auth)
    sess = session.Session(auth=plugin, verify=creds.verify)
    # 2.37: nics "auto" / "none" (nova allocates the network, or none)
    return client.Client("2.37", session=sess, region_name=creds.region,
                         endpoint_type=(creds.interface or "public"))


def _explain(exc: Exception) -> ClassroomError:
    from keystoneauth1 import exceptions as ks
    from novaclient import exceptions as nc

    if isinstance(exc, (ks.Unauthorized, nc.Unauthorized)):
        return CloudAuthError(f"the cloud refused the credentials (401): check the user, password and project "
                         f"of the cloud in clouds.yaml (or OS_*): {exc}")
    if "quota" in str(exc).lower():
        return QuotaError(f"the project's quota refused it: {exc}")
    if isinstance(exc, (nc.OverLimit, nc.Forbidden)):
        return ClassroomError(f"the cloud refused (policy or limit): {exc}")
    if isinstance(exc, ks.ConnectFailure):
        return ClassroomError(f"cannot reach the cloud: {exc}")
    return ClassroomError(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Booted:
    student: str
    server_id: str | None
    address: str | None
    ok: bool
    error: str | None = None
    retried: bool = False
    first_error: str | None = None  # the fault of the first attempt, when it was retried
    quota: bool = False  # refused by the project's quota


def read_roster(path: Path) -> list[str]:
    """One student name a line (# comments and blank lines skipped)."""
    names = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", line):
            raise ClassroomError(f"{path}:{number}: '{line}' is not a student name (letters, digits, '.', '_', '-')")
        if line in names:
            raise ClassroomError(f"{path}:{number}: '{line}' is listed twice")
        names.append(line)
    if not names:
        raise ClassroomError(f"{path}: no students")
    return names


def _address(server) -> str | None:
    for addresses in (server.addresses or {}).values():
        for entry in addresses:
            if entry.get("OS-EXT-IPS:type") == "floating":
                return entry["addr"]
    for addresses in (server.addresses or {}).values():
        for entry in addresses:
            return entry.get("addr")
    return None


def up(nova, *, image: str, flavor: str, students: list[str], key_name: str | None = None,
       network: str | None = None, class_id: str | None = None, timeout: float = 900,
       on_progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[str, list[Booted]]:
    """Boot one server per student, wait for ACTIVE, retry an ERROR server once."""
    class_id = class_id or uuid.uuid4().hex[:12]
    try:
        image_id = image if re.fullmatch(r"[0-9a-f-]{36}", image) else nova.glance.find_image(image).id
        flavor_obj = nova.flavors.find(name=flavor) if not flavor.isdigit() else nova.flavors.get(flavor)
    except Exception as exc:
        raise _explain(exc) from exc
    nics = {None: "auto", "auto": "auto", "none": "none"}.get(network) or [{"net-id": network}]

    def boot(student: str):
        return nova.servers.create(
            name=f"debuglab-{class_id}-{student}", image=image_id, flavor=flavor_obj, key_name=key_name,
            nics=nics, meta={CLASS_KEY: class_id, STUDENT_KEY: student})

    pending, results, retried = {}, {}, {}
    for student in students:
        try:
            pending[student] = boot(student).id
        except Exception as exc:
            why = _explain(exc)
            if isinstance(why, CloudAuthError):
                raise why from exc
            results[student] = Booted(student, None, None, False, why.args[0], quota=isinstance(why, QuotaError))
    deadline = time.monotonic() + timeout
    while pending:
        to_boot_again = []
        for student, server_id in list(pending.items()):
            server = nova.servers.get(server_id)
            if server.status == "ACTIVE":
                results[student] = Booted(student, server_id, _address(server), True, retried=student in retried,
                                          first_error=retried.get(student))
                del pending[student]
            elif server.status == "ERROR":
                fault = (getattr(server, "fault", {}) or {}).get("message", "no fault given")
                # nova's conductor rechecks the quota once concurrent builds are counted, and may refuse
                # more of them than the quota needs: such a server is booted again like any ERROR one
                if student not in retried:
                    retried[student] = fault
                    nova.servers.delete(server_id)  # an ERROR server holds a unit of the quota
                    to_boot_again.append(student)
                    continue
                del pending[student]
                if "quota" in fault.lower():
                    nova.servers.delete(server_id)
                    results[student] = Booted(student, None, None, False, f"refused at nova's quota recheck: {fault}",
                                              True, first_error=retried[student], quota=True)
                else:  # left in ERROR for the instructor to look at (class down deletes it)
                    results[student] = Booted(student, server_id, None, False, f"ERROR twice: {fault}", True,
                                              first_error=retried[student])
        for student in to_boot_again:  # once every ERROR server of this round is deleted
            try:
                pending[student] = boot(student).id
            except Exception as exc:
                why = _explain(exc)
                results[student] = Booted(student, None, None, False, why.args[0], True, first_error=retried[student],
                                          quota=isinstance(why, QuotaError))
                del pending[student]
        on_progress(len(results), len(students))
        if pending and time.monotonic() > deadline:
            for student, server_id in pending.items():
                results[student] = Booted(student, server_id, None, False, f"not ACTIVE after {timeout:.0f} s")
            break
        if pending:
            time.sleep(2)
    return class_id, [results[s] for s in students]


def summary(booted: list[Booted]) -> str:
    """One line for the instructor: how many are up, and why the others are not."""
    ok = sum(1 for b in booted if b.ok)
    text = f"{ok} of {len(booted)} server(s) ACTIVE"
    quota = [b for b in booted if b.quota]
    if quota:
        text += (f"; the project's quota let {len(booted) - len(quota)} of {len(booted)} be created and refused "
                 f"{len(quota)} ({', '.join(b.student for b in quota)}; {quota[0].error}): raise it (as admin: "
                 "openstack quota set --instances N PROJECT) or boot fewer")
    errored = [b for b in booted if not b.ok and not b.quota]
    if errored:
        text += f"; {len(errored)} failed: " + "; ".join(f"{b.student}: {b.error}" for b in errored)
    return text


def write_inventory(path: Path, class_id: str, cloud: str | None, booted: list[Booted], *, user: str,
                    profile: str, key_file: str | None = None) -> Path:
    """The inventory for `debuglab provision`, with the class's id for `class down`."""
    lines = [f"# written by debuglab class up; `debuglab class down {path.name}` deletes these servers",
             "[class]", f'class_id = "{class_id}"']
    if cloud:
        lines.append(f'cloud = "{cloud}"')
    if key_file:
        lines.append(f'key_file = "{key_file}"')
    for b in booted:
        if b.ok and b.address:
            host = f"[{b.address}]" if ":" in b.address else b.address
            lines += ["", "[[host]]", f'address = "{user}@{host}"', f'profile = "{profile}"', f'student = "{b.student}"']
        else:
            why = b.error if not b.ok else "ACTIVE but no address (no network)"
            why += f" (first attempt: {b.first_error})" if b.first_error and not b.ok else ""
            lines += ["", f"# {b.student}: server {b.server_id or '-'}: {' '.join(why.split())}"]  # one line
    path.write_text("\n".join(lines) + "\n")
    return path


def class_id_of(inventory_path: Path) -> tuple[str, str | None]:
    """(class_id, cloud) of an inventory `class up` wrote (it may list no reachable host)."""
    import tomllib

    try:
        klass = tomllib.loads(Path(inventory_path).read_text()).get("class", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClassroomError(f"{inventory_path}: cannot read: {exc}") from exc
    if not isinstance(klass.get("class_id"), str):
        raise ClassroomError(f"{inventory_path}: no class_id in [class]: not written by `debuglab class up`")
    return klass["class_id"], klass.get("cloud")


def down(nova, class_id: str) -> list[str]:
    """Delete the servers marked with this class's id; their names."""
    deleted = []
    try:
        for server in nova.servers.list(search_opts={"all_tenants": False}):
            if (server.metadata or {}).get(CLASS_KEY) == class_id:
                nova.servers.delete(server.id)
                deleted.append(server.name)
    except Exception as exc:
        raise _explain(exc) from exc
    return deleted
