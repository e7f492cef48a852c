"""The grader's speed.

1. One student over the whole catalog (the reference fixes): `grade` against running the
   same test ids directly with `stestr run --load-list` in the same venv, on a tree holding
   the same code; prints the ratio (the bar: at most 1.20).
2. A class of N submissions made from instructor/solutions, a realistic mix: reference
   fixes, alternative fixes, wrong fixes, untouched checkouts, regressions (a fix plus a
   change that breaks a pass_to_pass test), partial work (one bug of three), and hostile
   ones (os._exit at import, a patched test runner, a targeted fake, rigged test files);
   graded in one session on all cores. Prints submissions per minute, the CPU time of
   the grader's children over wall time (how many cores were busy), and the verdicts.

    .venv/bin/python benchmarks/bench_grade.py [--lab lab] [--runs 1] [--class-size 30] [--skip-one]
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab.catalog.model import Catalog  # noqa: E402
from debuglab.core import proc, testrun  # noqa: E402
from debuglab.core.kit import Kit  # noqa: E402
from debuglab.grade import grader, submission  # noqa: E402
from debuglab.grade.copy import Trees  # noqa: E402
from debuglab.lab.workspace import Workspace  # noqa: E402

# (kind, share of the class): the mix a real session gives, roughly
MIX = ("fix", "alternative", "fix", "wrong", "empty", "partial", "regression", "alternative", "fix",
       "exits", "patches_runner", "fakes_names", "rigged_tests", "wrong", "fix")
NUM = "nova/scheduler/filters/num_instances_filter.py"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def _prepend(path: Path, code: str) -> None:
    path.write_text(code + "\n" + path.read_text())


def make_class(kit: Kit, ws: Workspace, bugs, folder: Path, size: int) -> dict[str, str]:
    """Write `size` student patches into `folder`, made in a scratch clone of the lab's
    checkout; returns student → kind."""
    clone = folder.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(ws.checkout("nova")), str(clone)], check=True)
    kinds = {}
    for n in range(size):
        kind = MIX[n % len(MIX)]
        _git(clone, "checkout", "-q", "--", ".")
        _git(clone, "clean", "-qfd")
        patches = {
            "fix": [kit.solutions_dir / b.id / "fix.patch" for b in bugs],
            "alternative": [kit.solutions_dir / b.id / "alternative.patch" for b in bugs],
            "wrong": [kit.solutions_dir / b.id / "wrong.patch" for b in bugs],
            "partial": [kit.solutions_dir / bugs[n % len(bugs)].id / "fix.patch"],
        }.get(kind, [kit.solutions_dir / b.id / "fix.patch" for b in bugs] if kind != "empty" else [])
        for patch in patches:
            _git(clone, "apply", str(patch))
        if kind == "regression":  # the fixes, and a bad aggregate value no longer falls back to the config
            path = clone / NUM
            path.write_text(path.read_text().replace("            value = max_instances_per_host\n",
                                                     "            value = 0\n"))
        elif kind == "exits":
            _prepend(clone / NUM, "import os\nos._exit(0)")
        elif kind == "patches_runner":
            _prepend(clone / NUM, "import testtools\n"
                                  "def _run(self, result=None):\n"
                                  "    result.startTest(self); result.addSuccess(self); result.stopTest(self)\n"
                                  "testtools.TestCase.run = _run")
        elif kind == "fakes_names":
            _git(clone, "checkout", "-q", "--", NUM)  # the bug left in place, its tests faked by name
            _prepend(clone / NUM, "import testtools\n_real = testtools.TestCase.run\n"
                                  "def _run(self, result=None):\n"
                                  "    if 'instances' in self._testMethodName:\n"
                                  "        result.startTest(self); result.addSuccess(self); result.stopTest(self)\n"
                                  "        return result\n"
                                  "    return _real(self, result)\n"
                                  "testtools.TestCase.run = _run")
        elif kind == "rigged_tests":
            test = clone / "nova/tests/unit/scheduler/filters/test_num_instances_filters.py"
            test.write_text(test.read_text().replace("self.assertFalse(", "self.assertTrue(True or "))
            (clone / "sitecustomize.py").write_text("import os\nos._exit(0)\n")
        _git(clone, "add", "-A")
        text = _git(clone, "diff", "--cached", "HEAD")
        _git(clone, "reset", "-q")
        name = f"student{n:02d}-{kind}"
        (folder / f"{name}.patch").write_text(text)
        kinds[name] = kind
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--skip-one", action="store_true", help="only the class")
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    kit = Kit.default()
    bugs = [b for b in Catalog.load(kit.bugs_dir).bugs.values() if b.project == "nova"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    print(f"load before: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")

    if not args.skip_one:
        one_patch = tmp / "one.patch"
        one_patch.write_text("".join((kit.solutions_dir / b.id / "fix.patch").read_text() for b in bugs))
        one = submission.from_patch_file(one_patch)
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
    kinds = make_class(kit, ws, bugs, folder, args.class_size)
    subs = submission.gather(folder)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    class_grades = grader.grade_many(subs, [], ws.python)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cores = os.cpu_count() or 1
    print(f"class of {len(subs)}: {seconds:.1f} s, {len(subs) / seconds * 60:.1f} submissions/minute, "
          f"CPU/wall {cpu / seconds:.2f} (of {cores} cores: {cpu / (seconds * cores):.0%} busy), "
          f"load after {os.getloadavg()[0]:.1f}")
    table = collections.defaultdict(collections.Counter)
    for g in class_grades:
        for v in g.verdicts:
            table[kinds[g.student]][v.verdict] += 1
    for kind in dict.fromkeys(MIX):
        if kind in table:
            print(f"  {kind:<15} " + ", ".join(f"{verdict} {n}" for verdict, n in sorted(table[kind].items())))


if __name__ == "__main__":
    main()
