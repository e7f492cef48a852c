"""Timing helpers shared by the benchmark scripts: medians, never single runs."""

from __future__ import annotations

import collections
import statistics
import time
from pathlib import Path
from typing import Callable


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(runs: int, fn: Callable[[int], object], setup: Callable[[int], object] = lambda i: None) -> tuple[float, list[float]]:
    """Median seconds of `runs` calls of fn(i), each after an untimed setup(i)."""
    times = []
    for i in range(runs):
        setup(i)
        times.append(timed(lambda: fn(i)))
    return statistics.median(times), times


def show(label: str, median: float, times: list[float]) -> None:
    print(f"{label:<52} median {median:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in times)}")


def machine_cpu_seconds() -> float:
    """User + nice + system CPU seconds of the whole machine since boot (/proc/stat): the
    work of processes the benchmark does not own (simulated hosts' sshd, pip, git) too."""
    import os

    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def provision_twice(inv, parallel: int, steps: dict, on_event=None) -> tuple[float, float, float, float]:
    """`debuglab provision` of the inventory, then again: (first run s, second run s,
    machine CPU s and this process's CPU s of the first run). The first run's step
    durations (from provision's own progress events) are appended to `steps`; a failed
    host in the first run, or anything the second run changes, ends the benchmark."""
    import collections

    from debuglab.provision import engine

    events: dict = collections.defaultdict(list)

    def record(host, text: str) -> None:
        events[host].append((time.monotonic(), text))
        if on_event:
            on_event(host, text)

    cpu0, own0 = machine_cpu_seconds(), time.process_time()
    start = time.monotonic()
    results = engine.provision(inv, parallel=parallel, on_event=record)
    first = time.monotonic() - start
    own, cpu = time.process_time() - own0, machine_cpu_seconds() - cpu0
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"provision failed: {bad[0].host.student}: {bad[0].error}")
    for seen in events.values():
        for (t, text), (t_next, _) in zip(seen, seen[1:]):
            steps[text.split(" (")[0]].append(t_next - t)
    start = time.monotonic()
    results = engine.provision(inv, parallel=parallel)
    second = time.monotonic() - start
    changed = [r for r in results if r.changed or not r.ok]
    if changed:
        raise SystemExit(f"the second run changed something on {changed[0].host.student}: "
                         f"{changed[0].error or changed[0].details.get('done')}")
    return first, second, cpu, own


def memory(host) -> dict[str, list[float]]:
    """kind -> [processes, RSS MiB, PSS MiB] of the host's running processes."""
    import sshhosts  # tests/, on sys.path in the provisioning benchmarks

    kinds: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for pid, cmd in sshhosts.host_processes(host):
        kind = ("cloud" if "debuglab/cloud/" in cmd or "debuglab.cloud" in cmd
                else "JupyterLab" if "jupyter" in cmd else cmd.split(":")[0].split()[0].rsplit("/", 1)[-1])
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.endswith(" kB")}
        entry = kinds[kind]
        entry[0] += 1
        entry[1] += kb.get("Rss", 0) / 1024
        entry[2] += kb.get("Pss", 0) / 1024
    return dict(kinds)
