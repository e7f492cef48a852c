"""The grader's speed.

1. One student over the whole catalog (the reference fixes): `grade` against running the
   same test ids directly with `stestr run --load-list` in the same venv, on a tree holding
   the same code; prints the ratio (the bar: at most 1.20).
2. A class: N submissions (reference, alternative and wrong fixes, and empty changes, in
   turn) graded in one pool on all cores; prints submissions per minute and how busy the
   cores were.

    .venv/bin/python benchmarks/bench_grade.py [--lab lab] [--runs 1] [--class-size 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab import proc, testrun  # noqa: E402
from debuglab.catalog import Catalog  # noqa: E402
from debuglab.grade import grader, submission  # noqa: E402
from debuglab.grade.copy import Trees  # noqa: E402
from debuglab.kit import Kit  # noqa: E402
from debuglab.workspace import Workspace  # noqa: E402

KINDS = ("fix", "alternative", "wrong", "empty")


def _patch(kit: Kit, bugs, kind: str, folder: Path, name: str) -> Path:
    path = folder / f"{name}.patch"
    text = "" if kind == "empty" else "".join((kit.solutions_dir / b.id / f"{kind}.patch").read_text() for b in bugs)
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--class-size", type=int, default=30)
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    kit = Kit.default()
    bugs = [b for b in Catalog.load(kit.bugs_dir).bugs.values() if b.project == "nova"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    one = submission.from_patch_file(_patch(kit, bugs, "fix", tmp, "one"))

    grades = []
    g_median, g_times = median_of(args.runs, lambda i: grades.append(grader.grade(one, [], ws.python)))
    assert all(v.fixed for v in grades[-1].verdicts), [v.reason for v in grades[-1].verdicts]
    show(f"grade, 1 student x {len(bugs)} bugs (whole catalog)", g_median, g_times)

    ids = [i for b in bugs for i in b.test_ids]
    with Trees(ws.python, bugs, kit) as trees:
        tree = trees.copy("nova", tuple(b.id for b in bugs), one.patch, "stestr")
        ids_file = tmp / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        stestr = ws.venv / "bin" / "stestr"
        env = {k: os.environ[k] for k in testrun.KEPT_ENV if k in os.environ} | testrun.TEST_ENV

        def run_stestr(i: int) -> None:
            proc.run([stestr, "run", "--load-list", ids_file], cwd=tree, env=env, inherit_env=False,
                     timeout=1800, check=True, output_file=tmp / f"stestr-{i}.log")

        s_median, s_times = median_of(args.runs, run_stestr)
    show(f"stestr run --load-list, the same {len(ids)} ids", s_median, s_times)
    print(f"grade / stestr: {g_median / s_median:.2f} (bar: at most 1.20)")

    folder = tmp / "class"
    folder.mkdir()
    for n in range(args.class_size):
        _patch(kit, bugs, KINDS[n % len(KINDS)], folder, f"student{n:02d}")
    subs = submission.gather(folder)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    class_grades = grader.grade_many(subs, [], ws.python)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cores = os.cpu_count() or 1
    fixed = sum(v.fixed for g in class_grades for v in g.verdicts)
    print(f"class of {len(subs)}: {seconds:.1f} s, {len(subs) / seconds * 60:.1f} submissions/minute, "
          f"cores busy {cpu / (seconds * cores):.0%} of {cores}, {fixed} bug fixes graded fixed")


if __name__ == "__main__":
    main()
