"""processes: real processes and sockets, no mocks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from debuglab.core import processes

# a session leader (start_new_session) with a grandchild that ignores SIGTERM
TREE = ("import signal, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(flush=True); time.sleep(60)']); time.sleep(60)")


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_zombie_and_a_finished_process_are_dead_a_running_one_alive():
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        wait_for(lambda: os.path.exists(f"/proc/{done.pid}/stat") is False or
                 open(f"/proc/{done.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z")
        assert not processes.alive(done.pid)  # our zombie: reaped, dead
        assert processes.alive(running.pid)
        assert processes.command_line(running.pid)[:2] == [sys.executable.encode(), b"-c"]
    finally:
        running.kill()
        running.wait()
    assert not processes.alive(running.pid) and processes.command_line(done.pid) == []


def test_kill_session_ends_the_leader_and_a_grandchild_that_ignores_sigterm():
    leader = subprocess.Popen([sys.executable, "-c", TREE], start_new_session=True)
    wait_for(lambda: len(processes.session_members(leader.pid)) == 2)
    members = processes.session_members(leader.pid)
    assert leader.pid in members
    processes.kill_session(leader.pid, timeout=1)
    assert processes.session_members(leader.pid) == []
    assert not any(processes.alive(pid) for pid in members)


def test_sessions_started_by_finds_children_that_lead_their_own_session():
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        wait_for(lambda: len(processes.session_members(parent.pid)) == 2 and processes.sessions_started_by(parent.pid))
        [own] = processes.sessions_started_by(parent.pid)  # the child in the parent's session is not one
        assert own not in processes.session_members(parent.pid) and processes.session_members(own) == [own]
    finally:
        for sid in processes.sessions_started_by(parent.pid) + [parent.pid]:
            processes.kill_session(sid, timeout=1)
    assert processes.session_members(parent.pid) == []


def test_a_listening_port_is_not_free_is_listed_with_its_pid_and_names_its_holder():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not processes.listening(port)  # bound, not yet listening
        sock.listen()
        assert not processes.port_free(port) and processes.listening(port)
        assert ("127.0.0.1", port) in processes.listeners()[os.getpid()]
        assert processes.port_holder(port).startswith(f"; it is held by pid {os.getpid()} (")
        assert not processes.wait_port_free(port, 0.2)
    assert processes.port_free(port) and not processes.listening(port) and processes.port_holder(port) == ""
