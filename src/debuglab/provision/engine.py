"""`debuglab provision`: every host of the inventory at once, each on its own.

All hosts are checked at once (one fabric ThreadingGroup per probe script), then each
host goes through its steps in a pool of `parallel` workers: upload the kit if its hash
changed (and, to a lab host, the wheelhouse it installs from offline), then the
profile's steps. A host that fails is reported with why; the others go on. Running it
again changes nothing; each result lists what was done (`done`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from debuglab.catalog.model import Catalog
from debuglab.core.kit import Kit
from debuglab.lab import upstream
from debuglab.provision import devstack, hosts, labhost, upload, wheelhouse
from debuglab.provision.errors import HostCheckFailed, HostError
from debuglab.provision.inventory import Host, Inventory

Event = Callable[[Host, str], None]


@dataclass(frozen=True)
class HostResult:
    host: Host
    ok: bool
    seconds: float
    error: str | None = None
    changed: bool = False
    uploaded: bool = False
    details: dict = field(default_factory=dict)


def provision(inv: Inventory, *, kit: Kit | None = None, parallel: int = 8, dry_run: bool = False,
              accept_new_host_keys: bool = False, on_event: Event = lambda host, text: None) -> list[HostResult]:
    kit = kit or Kit.default()
    catalog = Catalog.load(kit.bugs_dir)
    nova_version = upstream.load_lock(kit.upstream_lock)["nova"].version
    start = time.monotonic()
    # the hosts first: a class whose hosts are down is told so at once, before minutes of
    # building the kit bundle and the wheelhouse that no host could take
    conns = {h: hosts.connection(h, inv, accept_new=accept_new_host_keys) for h in inv.hosts}
    for host in inv.hosts:
        on_event(host, "connecting, checking the host")
    facts: dict = {}
    ordered = list(conns.values())
    for i in range(0, len(ordered), max(1, parallel)):
        facts.update(hosts.probe_all(ordered[i:i + parallel], inv))
    reachable = [h for h in inv.hosts if not isinstance(facts[h], HostError)]
    for host in reachable:
        on_event(host, "building the kit bundle")
    # DevStack hosts need the debugger tools' wheels in the kit; lab hosts get those from
    # the wheelhouse, so their kit is the code alone (~1 MB instead of ~20 MB)
    profiles = {h.profile for h in reachable}
    bundles = {p: upload.build(kit, with_tools=(p == "devstack")) for p in sorted(profiles)}
    # what each host installs from offline: a lab host the kit's and the lab's packages,
    # a DevStack host (for JupyterLab) the kit's alone
    wanted = {h: "lab" if h.profile == "lab" else "kit" for h in reachable
              if h.profile == "lab" or inv.devstack.notebook_command}
    wheelhouses = {}
    for kind in sorted(set(wanted.values())):
        for host in [h for h, k in wanted.items() if k == kind]:
            on_event(host, "building the wheelhouse (once per change of the locks)")
        wheelhouses[kind] = wheelhouse.build(kit, with_lab=(kind == "lab"))

    def one(host: Host) -> HostResult:
        conn = conns[host]
        try:
            found = facts[host]
            if isinstance(found, HostError):
                raise found
            hosts.check(host, inv, found, nova_version)
            wheels = wheelhouses.get(wanted.get(host))
            wheels_dir = inv.lab.wheelhouse if host.profile == "lab" else inv.devstack.wheelhouse
            if wheels is not None:
                mismatch = wheelhouse.platform_matches(found.python, found.platform, wheels)
                if mismatch:
                    raise HostCheckFailed(host.label, mismatch)
            bugs = catalog.select(list(host.bugs))
            if dry_run:
                bundle = bundles[host.profile]
                plan = "kit upload" if found.kit_sha256 != bundle.sha256 else "kit up to date"
                if wheels is not None:
                    plan += ("; wheelhouse upload" if found.wheelhouse_sha256 != wheels.sha256
                             else "; wheelhouse up to date")
                on_event(host, "checked (dry run)")
                return HostResult(host, True, time.monotonic() - start,
                                  details={"plan": f"{plan}; {host.profile} with {len(bugs)} bug(s)",
                                           "python": found.python, "free_gb": round(found.free_gb, 1)})

            def step(text: str) -> None:
                on_event(host, text)

            uploaded = False
            bundle = bundles[host.profile]
            if found.kit_sha256 != bundle.sha256:
                step(f"uploading the kit ({bundle.size / 1e6:.1f} MB)")
                uploaded = upload.upload(conn, bundle, host.kit_dir, found.kit_sha256)
            done = ["kit uploaded"] if uploaded else []
            if wheels is not None and found.wheelhouse_sha256 != wheels.sha256:
                step(f"uploading the wheelhouse ({wheels.size / 1e6:.0f} MB)")
                if upload.upload(conn, wheels, wheels_dir, found.wheelhouse_sha256, "wheelhouse"):
                    done.append("wheelhouse uploaded")
            if host.profile == "devstack":
                details = devstack.provision(conn, host, inv.devstack, bugs, on_step=step)
                done += details["done"]
            else:
                details = labhost.provision(conn, host, inv.lab, [b.id for b in bugs], on_step=step)
                done += details["done"]
            on_event(host, "done")
            return HostResult(host, True, time.monotonic() - start, changed=bool(done) or details["changed"],
                              uploaded=uploaded, details={**details, "done": done})
        except HostError as exc:
            on_event(host, "failed")
            return HostResult(host, False, time.monotonic() - start, error=exc.reason)
        except Exception as exc:  # one host's surprise never stops the others
            on_event(host, "failed")
            return HostResult(host, False, time.monotonic() - start, error=str(hosts.as_host_error(host, exc).reason))
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, inv.hosts))
