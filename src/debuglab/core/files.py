"""Writing a file whole or not at all: a temporary file beside it, unique to its writer,
renamed over it. A reader never sees half a file, an interrupted write leaves the old
one, and two writers of one file never share a temporary name (the last rename wins).
Standard library only: the provisioning agent uses it on class hosts."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: Path, *, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside `path` to write in the block; renamed over `path` when the
    block ends, removed when it raises. The file gets `mode` (0600 until then)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write `path` whole (text as UTF-8) through `replacing`."""
    with replacing(path, mode=mode) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
