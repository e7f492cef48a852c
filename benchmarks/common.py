"""Timing helpers shared by the benchmark scripts: medians, never single runs."""

from __future__ import annotations

import statistics
import time
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
