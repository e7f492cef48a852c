"""`bugs verify` of the whole catalog: the time and the tests per second.

    .venv/bin/python benchmarks/bench_verify.py [--lab lab] [--runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import show  # noqa: E402

from debuglab.lab.workspace import Workspace  # noqa: E402
from debuglab.verify import checks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    reports = [checks.verify(ws, []) for _ in range(args.runs)]
    times = [r.seconds for r in reports]
    median = statistics.median(times)
    show(f"bugs verify, {len(reports[0].bugs)} bugs, {reports[0].runs} worker runs", median, times)
    print(f"test results per run: {reports[0].tests_run}; {reports[0].tests_run / median:.1f} tests/s; "
          f"all ok: {all(r.ok for r in reports)}")


if __name__ == "__main__":
    main()
