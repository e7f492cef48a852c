"""Room on the frame stack for every request thread (CPython 3.11's chunk edge; see STACK_ROOM_SLOTS).

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import threading

# CPython 3.11 keeps a thread's Python frames in chunks of 16 KiB, allocates a chunk
# (mmap) when a call does not fit in the current one and frees it (munmap) when that
# call returns (python/cpython#142183; 3.13 and 3.14 got a fix in 2026, 3.11 and 3.12
# never will). A loop that calls a function right at a chunk's edge pays two syscalls
# and fresh pages per call:
# nova's API stack is deep enough that building each Instance object for
# GET /servers/detail sat on that edge and took 3x longer than the same code run
# shallow. A frame with STACK_ROOM_SLOTS unused locals makes the interpreter allocate
# a 256 KiB chunk for it; the request then runs in the ~17,000 free slots after it
# (some 500 frames deep) and never meets an edge. Cost: ~60 us per request thread.
STACK_ROOM_SLOTS = 15_400


def _stack_room_function():
    """with_stack_room(fn, *args) = fn(*args), from a frame of STACK_ROOM_SLOTS locals
    (assigned in a branch that never runs: they only have to exist)."""
    # a chained assignment (`_0 = _1 = ... = None`) makes the locals with a value stack of
    # 2 slots; an unpacking (`_0, _1, ... = ()`) needed one slot per name on the value
    # stack, which doubled the frame and left ~1,900 free slots in the chunk, not ~17,000
    names = " = ".join(f"_{i}" for i in range(STACK_ROOM_SLOTS))
    source = f"def with_stack_room(fn, *args):\n    if fn is None:\n        {names} = None\n    return fn(*args)\n"
    namespace: dict = {}
    exec(compile(source, "<debuglab stack room>", "exec"), namespace)
    return namespace["with_stack_room"]


with_stack_room = _stack_room_function()


_room = threading.local()  # .given: this thread runs above a room frame already


def in_stack_room(fn, *args):
    """fn(*args) above a room frame, unless the thread has one: a second room in the same
    chunk would leave only ~1,900 free slots above it, and the request met the edge again."""
    if getattr(_room, "given", False):
        return fn(*args)
    _room.given = True
    try:
        return with_stack_room(fn, *args)
    finally:
        _room.given = False


def stack_room_for_every_thread() -> None:
    """Every thread started from now on runs above a stack-room frame, not only the WSGI
    servers' request threads: nova lists instances in its cell scatter-gather pool's
    threads and builds in the compute's, whose shallow stacks met the chunk edge at a depth
    that moved with the code (a planted bug, a student's edit). A fresh lab measured
    ~3,000 mmap+munmap calls per `servers/detail` of 47 servers with the room in request
    threads only."""
    run = threading.Thread.run

    def run_with_room(self):
        in_stack_room(run, self)

    threading.Thread.run = run_with_room
