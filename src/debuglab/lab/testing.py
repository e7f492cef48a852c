"""`debuglab test`: nova's (or python-novaclient's) visible tests of the student's own
checkout, as `tox -e py3 -- TARGET` runs them on DevStack, through the kit's one-import
subunit runner (testrun); never the hidden tests, which a lab does not hold.

A target is a test module (`nova.tests.unit.scheduler.filters.test_num_instances_filters`),
a package (`nova.tests.unit.scheduler.filters`), a class, a test id, or a path in the
checkout (`nova/scheduler`: its tests under `nova/tests/unit/scheduler`). The targets are
first listed (the ids, so that the run can show a real progress bar), then run in one
worker; `post_mortem` runs one test on the user's terminal and stops pdb in its failure.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from debuglab.catalog.model import PACKAGES
from debuglab.core import proc, testrun
from debuglab.core.errors import DebuglabError
from debuglab.lab.errors import TestTargetError
from debuglab.lab.workspace import Workspace

PROJECT_OF_PACKAGE = {package: project for project, package in PACKAGES.items()}  # novaclient -> python-novaclient
HIDDEN = "debuglab_hidden"

# Lists the ids of the targets, under the lab's python in the checkout (argv: worker path, targets).
_LIST = r'''
import importlib, importlib.util, json, os, sys, traceback, unittest
spec = importlib.util.spec_from_file_location("debuglab_worker", sys.argv[1])
worker = importlib.util.module_from_spec(spec); spec.loader.exec_module(worker)
from testtools import iterate_tests
loader, ids, problems = unittest.TestLoader(), [], []

def test_modules(package, folder):
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if os.path.isfile(os.path.join(here, d, "__init__.py")))
        rel = os.path.relpath(here, folder)
        prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
        yield from (f"{prefix}.{f[:-3]}" for f in sorted(files) if f.startswith("test") and f.endswith(".py"))

for target in json.loads(sys.argv[2]):
    name = worker.find_module(target)
    if name is None:
        problems.append(f"{target}: no such test module, package, class or test"); continue
    spec = importlib.util.find_spec(name)
    if spec.submodule_search_locations:  # a package: every test module below it
        if name != target:
            problems.append(f"{target}: no such test module in {name}"); continue
        names = list(test_modules(name, spec.submodule_search_locations[0]))
    else:
        names = [name]
    found = 0
    for mod in names:
        try:
            tests = list(iterate_tests(loader.loadTestsFromModule(importlib.import_module(mod))))
        except unittest.SkipTest:
            continue  # a module that skips itself (a driver's missing library), as stestr does
        except Exception:
            problems.append(f"{mod}: cannot import:\n{traceback.format_exc()}"); continue
        for test in tests:
            tid = test.id()
            if target in (name, tid) or tid.startswith((target + ".", target + "(")):
                ids.append(tid); found += 1
    if not found:
        problems.append(f"{target}: no test matches it in {name}")
print(json.dumps({"ids": list(dict.fromkeys(ids)), "problems": problems}))
'''

# Runs one test on the user's terminal; pdb stops where its first exception was raised.
_POST_MORTEM = r'''
import pdb, sys, unittest
import testtools.runtest as runtest
original, stopped = runtest.RunTest._got_user_exception, []
def stop_in_it(self, exc_info, tb_label="traceback"):
    name = type(exc_info[1]).__name__
    if not stopped and not isinstance(exc_info[1], unittest.SkipTest) and name not in ("_ExpectedFailure", "_UnexpectedSuccess"):
        stopped.append(name)
        print(f"\n*** {name}: {exc_info[1]}\n*** post-mortem: the frame that raised it (u/d to move, q to go on)")
        pdb.post_mortem(exc_info[2])
    return original(self, exc_info, tb_label)
runtest.RunTest._got_user_exception = stop_in_it
from testtools.run import main
main(["testtools.run", sys.argv[1]], sys.stdout)
'''


@dataclass(frozen=True)
class Listing:
    project: str
    ids: list[str]


def project_of(targets: list[str]) -> str:
    """nova, unless every target is python-novaclient's."""
    roots = {t.replace("/", ".").split(".")[0] for t in targets} or {"nova"}
    if roots == {PACKAGES["python-novaclient"]}:
        return "python-novaclient"
    if roots - set(PROJECT_OF_PACKAGE):
        bad = sorted(roots - set(PROJECT_OF_PACKAGE))
        raise TestTargetError(f"'{bad[0]}...' is not nova's or python-novaclient's: a target starts with nova "
                              "(nova.tests.unit.scheduler, nova/scheduler) or novaclient")
    if len(roots) > 1:
        raise TestTargetError("targets of nova and of python-novaclient: run them in two commands")
    return "nova"


def to_dotted(ws: Workspace, project: str, target: str) -> str:
    """A path of the checkout to the dotted name of its tests; a dotted name as it is."""
    if HIDDEN in target:
        raise TestTargetError(f"{target}: the hidden tests are the grader's, not in your lab (`debuglab check` runs them)")
    if "/" not in target and not target.endswith(".py"):
        return target
    pure = PurePosixPath(target.rstrip("/"))
    if pure.suffix == ".py":
        pure = pure.with_suffix("")
    parts = pure.parts
    if "tests" not in parts:  # a source path: its tests mirror it under <package>/tests/unit
        parts = (parts[0], "tests", "unit", *parts[1:])
        if not (ws.checkout(project).joinpath(*parts).is_dir() or ws.checkout(project).joinpath(*parts[:-1],
                                                                                                 f"test_{parts[-1]}.py").is_file()):
            raise TestTargetError(f"{target}: no tests of it under {'/'.join(parts)} in your checkout; "
                                  "name a test module, e.g. nova.tests.unit.scheduler.filters")
        if not ws.checkout(project).joinpath(*parts).is_dir():
            parts = (*parts[:-1], f"test_{parts[-1]}")
    return ".".join(parts)


def list_ids(ws: Workspace, targets: list[str]) -> Listing:
    """Every test id the targets select in the student's checkout."""
    project = project_of(targets)
    dotted = [to_dotted(ws, project, t) for t in targets] or [f"{_package(project)}.tests.unit"]
    checkout = ws.checkout(project)
    done = proc.run([ws.python, "-c", _LIST, testrun.WORKER, json.dumps(dotted)], cwd=checkout,
                    env=testrun.TEST_ENV, timeout=600, check=False)
    try:
        answer = json.loads(done.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DebuglabError(f"listing the tests failed (exit {done.returncode}):\n{done.output[-3000:]}") from None
    unknown = [p for p in answer["problems"] if "no such" in p or "no test matches" in p]
    if unknown or (answer["problems"] and not answer["ids"]):  # a target that names nothing: said, nothing run
        raise TestTargetError("\n".join(unknown or answer["problems"]))
    return Listing(project, [i for i in answer["ids"] if HIDDEN not in i])


def run(ws: Workspace, listing: Listing, on_progress: Callable[[int, int], None] = lambda done, total: None,
        timeout: float = 3600) -> testrun.Run:
    """Run the listed ids in one worker of the lab venv, reporting how many have finished."""
    work = Path(tempfile.mkdtemp(prefix="debuglab-test-"))
    try:
        box: dict = {}
        worker = threading.Thread(target=lambda: box.update(run=testrun.run_tests(
            ws.python, ws.checkout(listing.project), listing.ids, work_dir=work, name="test", timeout=timeout)))
        worker.start()
        stream = work / "test.subunit"
        while worker.is_alive():
            worker.join(0.5)
            if stream.is_file():
                on_progress(len(testrun.read_stream(stream)), len(listing.ids))
        on_progress(len(listing.ids), len(listing.ids))
        return box["run"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def post_mortem(ws: Workspace, project: str, test_id: str) -> int:
    """Run one test on the user's terminal; pdb stops in its first exception."""
    env = {**testrun.TEST_ENV, "OS_STDOUT_CAPTURE": "0", "OS_STDERR_CAPTURE": "0", "OS_TEST_TIMEOUT": "0"}
    return proc.interactive([ws.python, "-c", _POST_MORTEM, test_id], cwd=ws.checkout(project), env=env)


def _package(project: str) -> str:
    return PACKAGES[project]
