"""`debuglab provision` of `lab` hosts over real SSH (one sshd per network namespace,
tests/sshhosts.py): 1 host vs N hosts in parallel, each a first run then a second run.

    .venv/bin/python benchmarks/bench_provision_lab.py [--hosts 4] [--runs 1]

A lab host starts with an empty HOME (no debuglab, no cache) and no route anywhere: the
first run uploads the kit and the wheelhouse, installs debuglab offline into a venv on
the host, builds the lab with the host's own `debuglab lab create` (a second venv, nova's
~190 packages), and starts the mini-cloud and JupyterLab on the host's loopback. The
second run must change nothing. Prints:
  the medians of the first run's wall time for 1 host and for N, and their ratio;
  the second run (1 host, and N hosts in parallel: wall and wall / N per host);
  the mean seconds of each step per host (from provision's own progress events);
  the machine's CPU seconds during the first run, and the floor no schedule can beat here;
  the resident memory of each host's running cloud + JupyterLab (its namespace's processes
  but sshd: RSS summed, and PSS, which splits the pages they share).
Every cloud and JupyterLab is stopped at the end; no namespace, veth or process is left.

Caveat: the simulated hosts share this machine's 2 cores and its one disk. A first run
is nearly all CPU work on the host (two venv installs, byte-compiling, the cloud's start),
so N hosts cost about N times one host's CPU and cannot finish before
max(machine CPU / cores, one host's wall); the script prints that floor and the measured
time as a multiple of it. On real VMs each host brings its own cores, disk and memory,
and the floor is one host's time. The machine is usually shared: read `uptime` with it.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import sshhosts  # noqa: E402
from common import memory, provision_twice  # noqa: E402

from debuglab.core.kit import Kit  # noqa: E402
from debuglab.provision import inventory, upload, wheelhouse  # noqa: E402

BUGS = ["num-instances-off-by-one"]
VENV = "debuglab-venv"  # LabSettings.venv, under each host's HOME
LAB = "lab"  # LabSettings.dir, as lab_inventory writes it


def stop_host(host: sshhosts.Host) -> list[str]:
    """JupyterLab and the cloud stopped with the host's own debuglab; whatever else is left
    in its namespace but sshd is killed and named (a stop that left it is worth a report)."""
    dl = host.home / VENV / "bin" / "debuglab"
    if dl.exists():
        for what in ("notebook", "cloud"):
            sshhosts.host_run(host, [str(dl), what, "stop", "--dir", str(host.home / LAB)], timeout=120)
    return sshhosts.kill_host_processes(host)


def provision_once(lab: sshhosts.SshHosts, hosts: list[sshhosts.Host], tmp: Path, tag: str,
                   steps: dict[str, list[float]]) -> dict:
    """Fresh homes on `hosts`, then provision twice. The first run's step durations go
    into `steps`; the hosts' memory is read after the second run, then all is stopped."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        for left in pool.map(stop_host, hosts):
            if left:
                print(f"  (killed before the run, left from the last one: {left})", file=sys.stderr)
    for host in hosts:
        shutil.rmtree(host.home, ignore_errors=True)
        host.home.mkdir()
    os.sync()  # the removed trees' writeback would otherwise run during the timed provisioning
    path = tmp / f"class-{tag}.toml"
    path.write_text(sshhosts.lab_inventory(hosts, lab.known_hosts, lab.user_key, BUGS))
    inv = inventory.load(path)
    t0 = time.monotonic()

    def on_event(host, text: str) -> None:
        print(f"  {time.monotonic() - t0:7.1f} s  {host.student}: {text}", file=sys.stderr, flush=True)

    first, second, cpu, _ = provision_twice(inv, len(hosts), steps, on_event)
    mem = {host.name: memory(host) for host in hosts}
    with ThreadPoolExecutor(len(hosts)) as pool:
        for host, left in zip(hosts, pool.map(stop_host, hosts)):
            if left:
                print(f"  left running after `debuglab notebook/cloud stop` on {host.name}, killed: {left}")
    return {"first": first, "second": second, "cpu": cpu, "memory": mem}


def check_clean(netns: list[str], tmp: Path) -> str:
    """What the run left behind: namespaces, veths, processes under its temp folder."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    prefix = netns[0][:netns[0].rindex("h")]  # dl<tag>h<n>: the veths are dl<tag>a<n>
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left = [n for n in names if n in netns] + [word.rstrip(":").split("@")[0] for word in links.split()
                                               if word.startswith(prefix)]
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmd:
            left.append(f"process {proc_dir.name}: {cmd[:120]}")
    return "nothing left (namespaces, veths, processes)" if not left else "LEFT BEHIND: " + "; ".join(left)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if not sshhosts.sshd_available():
        raise SystemExit("needs openssh-server: apt-get install -y openssh-server")
    if not sshhosts.netns_available():
        raise SystemExit("needs network namespaces (root, iproute2): every lab host's cloud listens on the "
                         "same loopback ports, so each host needs a loopback of its own")
    if not Path(sshhosts.DEVSTACK_PYTHON).is_file():
        raise SystemExit(f"needs the Python 3.11.5+ the lab hosts run: {sshhosts.DEVSTACK_PYTHON}")
    with tempfile.TemporaryDirectory(prefix="bench-provision-lab-") as tmp:
        tmp = Path(tmp)
        # the kit as it is now, frozen: the bundle's hash must not move between the two runs
        os.environ["DEBUGLAB_KIT"] = str(sshhosts.frozen_kit(ROOT, tmp / "kit"))
        kit = Kit.default()
        # the controller's one-off work, untimed: it is cached after the first provisioning
        wheels = wheelhouse.build(kit)
        bundle = upload.build(kit, with_tools=False)
        one, many = [], []
        steps1, stepsn = collections.defaultdict(list), collections.defaultdict(list)
        with sshhosts.SshHosts(tmp / "hosts", args.hosts) as lab:
            netns = [h.netns for h in lab.hosts]
            try:
                print(f"{args.hosts} lab hosts (network namespaces), {os.cpu_count()} cores here, "
                      f"{args.runs} run(s) each; kit {bundle.size / 1e6:.1f} MB, wheelhouse {wheels.size / 1e6:.0f} MB")
                for i in range(args.runs):
                    one.append(provision_once(lab, lab.hosts[:1], tmp, f"1-{i}", steps1))
                    many.append(provision_once(lab, lab.hosts, tmp, f"n-{i}", stepsn))
            finally:
                with ThreadPoolExecutor(len(lab.hosts)) as pool:
                    list(pool.map(stop_host, lab.hosts))
        clean = check_clean(netns, tmp)
    n = args.hosts
    m1 = statistics.median(r["first"] for r in one)
    mn = statistics.median(r["first"] for r in many)
    s1 = statistics.median(r["second"] for r in one)
    sn = statistics.median(r["second"] for r in many)
    cpu1 = statistics.median(r["cpu"] for r in one)
    cpun = statistics.median(r["cpu"] for r in many)
    runs = lambda rs, key: ", ".join(f"{r[key]:.1f}" for r in rs)  # noqa: E731
    print(f"{'1 host, first run':<42} median {m1:7.1f} s   runs: {runs(one, 'first')}")
    print(f"{f'{n} hosts in parallel, first run':<42} median {mn:7.1f} s   runs: {runs(many, 'first')}")
    print(f"{'1 host, second run (nothing changed)':<42} median {s1:7.2f} s")
    print(f"{f'{n} hosts, second run (nothing changed)':<42} median {sn:7.2f} s = {sn / n:.2f} s per host")
    cores = os.cpu_count() or 1
    print(f"machine CPU seconds, first run: 1 host {cpu1:.0f} s, {n} hosts {cpun:.0f} s "
          "(other processes on the machine included)")
    floor = max(cpun / cores, m1)
    print(f"floor for {n} hosts on {cores} cores: max(CPU {cpun:.0f} s / {cores}, one host {m1:.1f} s) "
          f"= {floor:.1f} s; measured {mn:.1f} s = {mn / floor:.2f}x the floor; "
          f"with a core per host the floor would be {m1:.1f} s")
    print(f"{'step (first run), mean seconds per host':<62} {'1 host':>8} {f'{n} hosts':>9}")
    for step in dict.fromkeys([*steps1, *stepsn]):
        if step != "done":
            print(f"  {step[:60]:<60} {statistics.mean(steps1.get(step) or [0]):8.2f} "
                  f"{statistics.mean(stepsn.get(step) or [0]):9.2f}")
    print(f"memory of each host's cloud + JupyterLab after the second run (last run of {n} hosts), MiB:")
    for name, kinds in many[-1]["memory"].items():
        parts = ", ".join(f"{kind} ({int(p)} proc) RSS {rss:.0f} PSS {pss:.0f}" for kind, (p, rss, pss) in sorted(kinds.items()))
        served = [kinds[k] for k in ("cloud", "JupyterLab") if k in kinds]
        total_rss, total_pss = sum(k[1] for k in served), sum(k[2] for k in served)
        print(f"  {name:<6} RSS {total_rss:4.0f}  PSS {total_pss:4.0f}   {parts}")
    print(f"parallel ratio  {n} hosts / 1 host (first run): {mn / m1:.2f}x   (target <= 2x)")
    print(f"second run per host: {sn / n:.2f} s   (target < 3 s)")
    print(f"cleanup: {clean}")


if __name__ == "__main__":
    main()
