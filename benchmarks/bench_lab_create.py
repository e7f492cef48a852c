"""`lab create` with a warm cache (no network needed) against a plain `uv pip install` of
the same lock into a fresh venv, the way one would install it by hand.

    .venv/bin/python benchmarks/bench_lab_create.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from uv import find_uv_bin

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab.core import proc
from debuglab.core.kit import Kit, cache_dir  # noqa: E402
from debuglab.lab import workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--where", type=Path, default=None,
                        help="the folder the labs are built in (default: the system's temporary folder)")
    args = parser.parse_args()
    runs = args.runs
    kit = Kit.default()
    with tempfile.TemporaryDirectory(dir=args.where) as tmp:
        tmp = Path(tmp)
        print(f"labs built in {tmp}")
        workspace.create(tmp / "warmup", [])  # fills the cache if it is cold
        shutil.rmtree(tmp / "warmup")

        def clear(path: Path) -> None:
            # the deletion's disk writes settle before the next timed run, not during it
            shutil.rmtree(path, ignore_errors=True)
            os.sync()

        create, create_times = median_of(runs, lambda i: workspace.create(tmp / f"lab{i}", []),
                                         setup=lambda i: clear(tmp / f"lab{i - 1}"))
        shutil.rmtree(tmp / f"lab{runs - 1}", ignore_errors=True)
        uv = find_uv_bin()
        env = {"UV_CACHE_DIR": str(cache_dir() / "uv")}

        def plain(i: int) -> None:
            proc.run([uv, "pip", "install", "--quiet", "--python", tmp / f"venv{i}" / "bin" / "python",
                      "--require-hashes", "-r", kit.venv_lock], env=env, timeout=1800)

        def fresh_venv(i: int) -> None:
            clear(tmp / f"venv{i - 1}")
            proc.run([uv, "venv", "--quiet", "--python", sys._base_executable, tmp / f"venv{i}"], env=env)

        baseline, baseline_times = median_of(runs, plain, setup=fresh_venv)
    show("debuglab lab create (warm cache, whole lab)", create, create_times)
    show("uv pip install -r lab.lock (same cache, venv only)", baseline, baseline_times)
    print(f"ratio lab create / plain install: {create / baseline:.2f}")


if __name__ == "__main__":
    main()
