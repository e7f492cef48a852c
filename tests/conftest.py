"""Shared fixtures: the real kit, copies of it to break, real upstream trees, and one lab
built for the whole session (from the warm cache the README's setup command filled)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from debuglab.core.kit import Kit, cache_dir
from debuglab.lab import upstream, workspace
from tests._util import DEBUGLAB, ROOT  # noqa: F401 (DEBUGLAB: for the tests that read it here)

# A bug for python-novaclient that the tests write themselves: its checkout unpacks in
# a tenth of a second, so injection tests run on a real upstream tree, fast.


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit(ROOT)


@pytest.fixture(scope="session")
def projects(kit) -> dict[str, upstream.Project]:
    return upstream.load_lock(kit.upstream_lock)


@pytest.fixture
def kit_copy(tmp_path, kit) -> Kit:
    """A copy of the kit's data (bugs, solutions, locks) that a test may break."""
    root = tmp_path / "kit"
    for part in ("bugs", "requirements"):
        shutil.copytree(kit.root / part, root / part)
    shutil.copytree(kit.solutions_dir, root / "instructor" / "solutions")
    return Kit(root)


@pytest.fixture
def novaclient_checkout(tmp_path, projects) -> Path:
    """A fresh python-novaclient 18.13.1 tree from the pinned sdist."""
    project = projects["python-novaclient"]
    return upstream.extract(project, upstream.fetch(project, cache_dir()), tmp_path / "python-novaclient")


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> workspace.Workspace:
    """One lab with the whole catalog, built once for the session."""
    return workspace.create(tmp_path_factory.mktemp("session") / "lab", [])


@pytest.fixture(scope="session")
def lab_under_test(request) -> workspace.Workspace:
    """The lab the cloud and notebook tests run against: $DEBUGLAB_TEST_LAB if set (a lab
    you already have, for a quick run), else the session's lab."""
    path = os.environ.get("DEBUGLAB_TEST_LAB")
    if path:
        return workspace.Workspace.open(Path(path))
    return request.getfixturevalue("lab")


class BackgroundCommands:
    """Commands run one after another beside the tests, each in a process session of its
    own, their output kept for the test that reads it. `bugs verify` over the whole catalog
    is ~25 minutes of CPU on one core (nova's own tests), while most tests wait on a cloud,
    an SSH host or a browser and leave the other core idle: it starts with the session."""

    def __init__(self, commands: list[list[str]], env: dict[str, str]):
        self.results: list[subprocess.CompletedProcess] = []
        self._proc: subprocess.Popen | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, args=(commands, env), daemon=True)
        self._thread.start()

    def _run(self, commands: list[list[str]], env: dict[str, str]) -> None:
        for argv in commands:
            if self._stopped:
                return
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env, start_new_session=True)
            out, err = self._proc.communicate()
            self.results.append(subprocess.CompletedProcess(argv, self._proc.returncode, out, err))
            if self._proc.returncode != 0:
                return

    def wait(self, timeout: float) -> list[subprocess.CompletedProcess]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            pytest.fail(f"the background commands ran over {timeout:.0f} s: {self._proc.args if self._proc else ''}")
        return self.results

    def stop(self) -> None:
        self._stopped = True
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._thread.join(60)


_BACKGROUND: dict[str, tuple[BackgroundCommands, Path]] = {}
VERIFICATION = "catalog_verification"  # the fixture a test reads the background run with


def _reads_verification(item) -> bool:
    return VERIFICATION in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    """Tests that read a background run go last: the others run while it works."""
    items.sort(key=_reads_verification)


def pytest_collection_finish(session):
    """Start the catalog's verification now if a collected test reads it: in a lab of its
    own (the session's lab is rebuilt and restarted by other tests), one test worker. As CI
    verifies: the bugs whose records are out of date, and a sample of the others."""
    if session.config.option.collectonly:
        return
    if any(map(_reads_verification, session.items)):
        folder = Path(tempfile.mkdtemp(prefix="debuglab-verify-"))
        build = ("import sys; from pathlib import Path; from debuglab.lab import workspace; "
                 "workspace.create(Path(sys.argv[1]), [])")
        commands = [[sys.executable, "-c", build, str(folder / "lab")],
                    [str(DEBUGLAB), "bugs", "verify", "--lab", str(folder / "lab"), "--jobs", "1",
                     "--changed", "--no-record"]]
        _BACKGROUND[VERIFICATION] = (
            BackgroundCommands(commands, {**os.environ, "COLUMNS": "200"}), folder)


def pytest_sessionfinish(session):
    for commands, folder in _BACKGROUND.values():
        commands.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def catalog_verification() -> subprocess.CompletedProcess:
    """`debuglab bugs verify --changed`, started with the session (above)."""
    commands, _ = _BACKGROUND[VERIFICATION]
    results = commands.wait(timeout=3600)
    assert results and results[0].returncode == 0, \
        f"the verification's lab was not built:\n{results[0].stderr[-3000:] if results else '(nothing ran)'}"
    assert len(results) == 2, results
    return results[1]
