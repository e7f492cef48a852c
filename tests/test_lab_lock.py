"""The lab venv lock holds: nova's own compute tests pass on pristine upstream with it.

(An unpinned resolve takes SQLAlchemy 2.1, under which about 200 of these fail: nova
turns its deprecation warnings into errors.)"""

from __future__ import annotations

from collections import Counter

import pytest

from debuglab import testrun, upstream
from debuglab.kit import cache_dir

pytestmark = pytest.mark.slow
MODULE = "nova.tests.unit.compute.test_compute"


def test_nova_compute_tests_pass_on_pristine_upstream_with_the_locked_venv(lab, projects, tmp_path):
    nova = projects["nova"]
    tree = upstream.extract(nova, upstream.fetch(nova, cache_dir()), tmp_path / "nova")
    run = testrun.run_tests(lab.python, tree, [MODULE], work_dir=tmp_path / "run", timeout=1500)
    statuses = Counter(outcome.status for outcome in run.reported.values())
    failed = [o.id for o in run.reported.values() if o.status not in ("success", "skip")]
    assert run.worker_ok, run.log.read_text()[-3000:]
    assert statuses["success"] > 450, statuses
    assert failed == [], failed[:10]
