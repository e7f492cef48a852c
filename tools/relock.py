#!/usr/bin/env python3
"""Regenerate requirements/lab.lock: requirements/lab.in plus the runtime requirements of
the pinned nova and python-novaclient sdists, every package pinned with its hashes.

Run with debuglab's venv: `.venv/bin/python tools/relock.py`. Then rebuild a lab and run
`debuglab bugs verify`, which runs the bugs' nova tests on pristine upstream first.
"""

import shutil
import tarfile
import tempfile
from pathlib import Path

from uv import find_uv_bin

from debuglab.core import proc
from debuglab.core.kit import Kit, cache_dir
from debuglab.lab import upstream


def main() -> None:
    kit = Kit.default()
    requirements = kit.root / "requirements"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(requirements / "lab.in", Path(tmp) / "lab.in")
        inputs = ["lab.in"]
        for project in upstream.load_lock(kit.upstream_lock).values():
            sdist = upstream.fetch(project, cache_dir())
            with tarfile.open(sdist) as tar:
                member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/requirements.txt"))
                target = Path(tmp) / f"{project.name}-requirements.txt"
                target.write_bytes(tar.extractfile(member).read())
            inputs.append(target.name)
        # run in the temporary folder so that the lock's "via" notes name no temporary path
        proc.run([find_uv_bin(), "pip", "compile", "--quiet", "--python-version", "3.11", "--universal",
                  "--generate-hashes", "--no-header", *inputs, "-o", requirements / "lab.lock"],
                 cwd=tmp, timeout=600)
    print(f"wrote {requirements / 'lab.lock'}")


if __name__ == "__main__":
    main()
