"""`inject` of the whole catalog into a fresh nova checkout (copies of the pristine tree).

    .venv/bin/python benchmarks/bench_inject.py [--runs 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab.catalog.model import Catalog  # noqa: E402
from debuglab.core.kit import Kit, cache_dir  # noqa: E402
from debuglab.lab import upstream  # noqa: E402
from debuglab.lab.inject import inject  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    kit = Kit.default()
    catalog = Catalog.load(kit.bugs_dir)
    projects = upstream.load_lock(kit.upstream_lock)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, project in projects.items():
            bugs = [b for b in catalog.bugs.values() if b.project == name]
            if not bugs:
                continue
            pristine = upstream.extract(project, upstream.fetch(project, cache_dir()), tmp / f"{name}-pristine")

            def fresh(i: int) -> None:
                shutil.rmtree(tmp / f"{name}-{i - 1}", ignore_errors=True)
                upstream.copy_tree(pristine, tmp / f"{name}-{i}")

            median, times = median_of(runs, lambda i: inject(tmp / f"{name}-{i}", bugs), setup=fresh)
            show(f"inject {len(bugs)} bug(s) into {name}", median, times)
            again, again_times = median_of(runs, lambda i: inject(tmp / f"{name}-{runs - 1}", bugs))
            show(f"inject again (idempotent no-op) into {name}", again, again_times)


if __name__ == "__main__":
    main()
