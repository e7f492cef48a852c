"""Runs test ids in the lab venv and writes a subunit v2 stream to a file.

This file runs under the LAB's Python (nova importable), not debuglab's: it uses only
the standard library, testtools and python-subunit. Three modes:

- one run (`--tree --ids --out`): import the tests, run them, exit (bugs verify);
- `--serve`: the grader's fork server. It imports the jobs' test modules once from the
  baseline (no student code in it) with the in-scope modules blocked: whatever imports
  one of them, directly or through others, fails and is dropped, so what stays loaded
  cannot reach a file a student may change. Then it reads jobs (JSON lines on stdin)
  and forks one child per job. A child moves to its own grading copy, drops to its own
  uid, imports the rest fresh from that copy (the student's code first runs there),
  runs the job's ids and exits; the server reports its exit status, and ends it at the
  job's own deadline.

In every mode an id that cannot be found or imported is reported as failed, with why.
The stream is bracketed by two marker records carrying the run's nonce, and the last
one lists what an integrity check found after the student's code ran (see `Guard`).
"""

import argparse
import importlib
import importlib.util
import json
import os
import select
import signal
import sys
import time
import traceback
import unittest

LOADED = "debuglab.marker.loaded"  # written after every test module is imported
DONE = "debuglab.marker.done"  # written last, with the integrity findings
# Names on a test's class (and its bases) that decide whether and how it runs.
RUN_PATH = ("run", "__call__", "debug", "setUp", "tearDown", "_run_setup", "_run_teardown",
            "_run_test_method", "_get_test_method", "_callSetUp", "_callTestMethod", "_callTearDown",
            "_callCleanup", "doCleanups", "id", "shortDescription", "_formatMessage", "failureException",
            "assertEqual", "assertTrue", "assertFalse", "fail", "skipTest", "run_tests_with")


def find_module(test_id):
    """The longest importable module name that test_id starts with (an id that is a
    module's name selects all of that module's tests)."""
    parts = test_id.split("(")[0].split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except (ImportError, AttributeError, ValueError):
            continue
    return None


def isolate_path(tree, site_dirs):
    """The grader's sandbox runs this under `python -S`: no sitecustomize or usercustomize
    is imported, and after the venv's own .pth files are read, every path outside the
    venv's site dirs and the base Python is dropped (an editable install's link to a
    student's checkout included)."""
    import site

    for site_dir in site_dirs:
        site.addsitedir(site_dir)
    roots = [os.path.realpath(p) for p in (tree, *site_dirs, sys.base_prefix, sys.base_exec_prefix)]

    def allowed(entry):
        real = os.path.realpath(entry or ".")
        return any(real == root or real.startswith(root + os.sep) for root in roots)

    sys.path[:] = [entry for entry in sys.path if entry and allowed(entry)]


_LOCATE = [lambda path: path]  # where a module's file can be read (the child's readable copies)


class Guard:
    """What the student's code could replace to make a test report success without
    running it, taken before any student code runs and compared after the run:

    - the test framework's run path and the subunit writer (testtools, unittest,
      subunit, this worker): the same function objects;
    - each expected test's method and the run-path methods of its class: the code that
      compiling the test's own source file gives (test files are never the student's);
      nothing set on the test instance itself;
    - the stream's file: the same open file (no dup2 over it).

    Code that runs in this process can defeat any in-process check if it targets this
    one; the stream's markers, sequence and nonce are checked again outside (testrun)."""

    def __init__(self, tree, out, student_files=()):
        import subunit
        import testtools
        import testtools.runtest
        import testtools.testresult.real as real

        self.tree = os.path.realpath(tree)
        self.student_files = {os.path.join(self.tree, f) for f in student_files}
        self.out = out
        self.fd_id = self._fd_id(out.fileno())
        owners = [testtools.TestCase, testtools.runtest.RunTest, unittest.TestCase, unittest.case._Outcome,
                  testtools.ExtendedToStreamDecorator, real.StreamResult, subunit.StreamResultToBytes,
                  unittest.TestSuite, unittest.TestLoader]
        self.library = tuple((owner, name, value) for owner in owners for name, value in vars(owner).items()
                             if callable(value) or isinstance(value, (classmethod, staticmethod, property)))
        me = sys.modules[__name__]
        self.own = tuple((me, name, value) for name, value in vars(me).items() if callable(value))
        self._compiled = {}

    @staticmethod
    def _fd_id(fd):
        st = os.fstat(fd)
        return st.st_dev, st.st_ino

    def _source_code(self, filename):
        """Every code object compiled from `filename` as it is on disk: name and first line → code."""
        if filename not in self._compiled:
            found = {}
            try:
                with open(_LOCATE[0](filename), "rb") as fh:
                    stack = [compile(fh.read(), filename, "exec", dont_inherit=True)]
            except (OSError, SyntaxError, ValueError):
                stack = []
            while stack:
                code = stack.pop()
                found.setdefault((code.co_name, code.co_firstlineno), []).append(code)
                stack.extend(c for c in code.co_consts if hasattr(c, "co_code"))
            self._compiled[filename] = found
        return self._compiled[filename]

    def _same_as_source(self, func):
        code = getattr(func, "__code__", None)
        if code is None:
            return True  # a builtin or a slot wrapper: not Python code anyone swapped in
        if os.path.realpath(code.co_filename) in self.student_files:
            return False  # the run path never goes through the student's files
        compiled = self._source_code(code.co_filename).get((code.co_name, code.co_firstlineno), ())
        return any(c.co_code == code.co_code and c.co_consts == code.co_consts for c in compiled)

    def test_problems(self, test):
        """Why `test` may not have run as written (empty: nothing found)."""
        problems = []
        name = getattr(test, "_testMethodName", None)
        names = (name, *RUN_PATH) if name else RUN_PATH
        overridden = [n for n in names if n in vars(test)]
        if overridden:
            problems.append(f"{test.id()}: {', '.join(overridden)} set on the test object itself")
        for attr in names:
            for klass in type(test).__mro__:
                if attr in vars(klass):
                    value = vars(klass)[attr]
                    func = getattr(value, "__func__", value)
                    filename = getattr(getattr(func, "__code__", None), "co_filename", "")
                    own_file = getattr(sys.modules.get(klass.__module__), "__file__", None)
                    if (attr == name and own_file and filename and os.path.realpath(filename) == os.path.realpath(own_file)
                            and func.__code__.co_name != name):
                        problems.append(f"{test.id()}: its test method is {func.__code__.co_name}, another "
                                        "test's code")
                    elif not self._same_as_source(func):
                        problems.append(f"{test.id()}: {klass.__name__}.{attr} is not the code of "
                                        f"{filename or 'its source file'}")
                    break
        return problems

    def library_problems(self):
        changed = [f"{owner.__module__}.{getattr(owner, '__qualname__', owner)}.{name}"
                   for owner, name, value in (*self.library, *self.own)
                   if (vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)) is not value]
        problems = [f"{name} was replaced while the tests ran" for name in changed[:10]]
        try:
            if self._fd_id(self.out.fileno()) != self.fd_id:
                problems.append("the result stream's file descriptor was replaced")
        except (OSError, ValueError):
            problems.append("the result stream's file was closed")
        return problems


def _marker(stream, test_id, nonce, payload=None):
    data = json.dumps({"nonce": nonce, **(payload or {})}).encode()
    stream.status(test_id=test_id, test_status="exists", file_name="debuglab", file_bytes=data,
                  mime_type="application/json", eof=True)


def run_ids(tree, wanted, out_path, nonce, student_files=()):
    """Import the tests of `wanted` from `tree`, run them, write the stream. The stream
    file is opened before any test module (and so any student code) is imported."""
    from subunit import StreamResultToBytes
    from testtools import ExtendedToStreamDecorator, iterate_tests

    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        stream = StreamResultToBytes(out)
        guard = Guard(tree, out, student_files)
        problems = []

        by_module = {}
        for test_id in wanted:
            by_module.setdefault(find_module(test_id), []).append(test_id)
        loader = unittest.TestLoader()
        selected, selected_ids, errors = [], set(), []
        for module_name, ids in by_module.items():
            if module_name is None:
                errors += [(test_id, "no importable module in this test id\n") for test_id in ids]
                continue
            try:
                module = importlib.import_module(module_name)
                tests = list(iterate_tests(loader.loadTestsFromModule(module)))
            except BaseException as exc:  # a student's SystemExit at import is their error too
                if isinstance(exc, KeyboardInterrupt):
                    raise
                text = traceback.format_exc()
                errors += [(test_id, f"cannot load {module_name}:\n{text}") for test_id in ids]
                continue
            for test_id in ids:
                # a scenario test may expand only when it runs (testscenarios.WithScenarios)
                match = [t for t in tests if t.id() == test_id or test_id.startswith(t.id() + "(")
                         or test_id == module_name]
                if not match:
                    errors.append((test_id, f"no such test in {module_name}\n"))
                for test in match:
                    if test.id() not in selected_ids:
                        selected_ids.add(test.id())
                        selected.append(test)
        # everything before this marker was written while the tests were being imported:
        # only a student's code writes then
        _marker(stream, LOADED, nonce)
        for test_id, text in errors:
            stream.status(test_id=test_id, test_status="inprogress")
            stream.status(test_id=test_id, test_status="fail", file_name="traceback",
                          file_bytes=text.encode(), mime_type="text/plain; charset=utf8", eof=True)
        out.flush()
        for test in selected:
            problems += guard.test_problems(test)

        result = ExtendedToStreamDecorator(stream)
        result.startTestRun()
        try:
            for test in selected:
                test.run(result)
                out.flush()
        finally:
            result.stopTestRun()
            for test in selected:
                problems += guard.test_problems(test)
            problems += guard.library_problems()
            _marker(stream, DONE, nonce, {"problems": sorted(set(problems))[:20]})
            out.flush()


# --- the fork server ----------------------------------------------------------------

class Blocker:
    """A meta path finder that fails the import of the given modules (and their
    submodules): while the server preloads, nothing that uses a module a student may
    change gets loaded; such a module's importers fail and are dropped with it."""

    def __init__(self, names):
        self.names = tuple(names)

    def blocks(self, name):
        return any(name == n or name.startswith(n + ".") for n in self.names)

    def find_spec(self, name, path=None, target=None):
        if self.blocks(name):
            raise ImportError(f"{name} is imported only in a job's child", name=name)
        return None


def move_to_tree(base, tree, rebase=None):
    """Point imports that have not happened yet at `tree`: sys.path and the search path
    of every package already imported from `base` (the modules already imported are
    byte-identical in both trees: none of them reaches a file the student changed).
    `rebase` maps more folders to readable copies (the standard library's)."""
    moves = [(os.path.realpath(old), os.path.realpath(new)) for old, new in {base: tree, **(rebase or {})}.items()]

    def rebased(path):
        real = os.path.realpath(path or ".")
        for old, new in moves:
            if real == old or real.startswith(old + os.sep):
                return new + real[len(old):]
        return path

    _LOCATE[0] = rebased
    sys.path[:] = [rebased(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [rebased(p) for p in search]
            spec = getattr(module, "__spec__", None)
            if spec is not None and isinstance(spec.submodule_search_locations, list):
                spec.submodule_search_locations[:] = list(search)
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def _child(base, job, rebase):
    """In the forked child: become the job's sandboxed process and run its ids."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for fd in job.get("close_fds", []):
            try:
                os.close(fd)
            except OSError:
                pass
        if job.get("cgroup"):
            with open(os.path.join(job["cgroup"], "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        if job.get("nproc"):
            import resource

            resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
        os.environ["HOME"] = job["home"]
        os.environ["TMPDIR"] = job["tmp"]
        os.chdir(job["tree"])
        if job.get("uid") is not None and os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(job["uid"], job["uid"], job["uid"])
            os.setresuid(job["uid"], job["uid"], job["uid"])
        move_to_tree(base, job["tree"], rebase)
        import tempfile

        tempfile.tempdir = None
        run_ids(job["tree"], job["ids"], job["out"], job["nonce"], job.get("student_files", ()))
        sys.stdout.flush()
        sys.stderr.flush()
        code = 0
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
        code = 3
    os._exit(code)


def _end_job(pid, job):
    """Kill whatever the job left: its process group, its cgroup, its uid's processes."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    uid = job.get("uid")
    for _ in range(50):
        pids = []
        if uid is not None and os.geteuid() == 0:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        if os.stat(f"/proc/{entry}").st_uid == uid:
                            pids.append(int(entry))
                    except OSError:
                        continue
        if job.get("cgroup"):
            try:
                with open(os.path.join(job["cgroup"], "cgroup.procs")) as fh:
                    pids += [int(p) for p in fh.read().split()]
            except (OSError, ValueError):
                pass
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def serve(base, preload_file):
    """The fork server's loop: preload, say "ready", then one child per job line."""
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever nova prints while it is imported goes to the log, not the protocol
    sys.path.insert(0, base)
    os.chdir(base)
    with open(preload_file) as fh:
        plan = json.load(fh)
    blocker = Blocker(plan.get("blocked", ()))
    sys.meta_path.insert(0, blocker)
    loaded = 0
    for name in plan.get("modules", ()):
        try:
            importlib.import_module(name)
            loaded += 1
        except Exception:
            continue
    sys.meta_path.remove(blocker)
    leaked = sorted(n for n in sys.modules if blocker.blocks(n))
    import threading

    import subunit  # noqa: F401  (the children's writer, loaded once here)
    import testtools  # noqa: F401

    root = os.path.realpath(base) + os.sep
    from_tree = sum(1 for m in list(sys.modules.values())
                    if os.path.realpath(getattr(m, "__file__", None) or "/").startswith(root))
    reply.write(json.dumps({"ready": True, "preloaded": loaded, "tree_modules": from_tree, "leaked": leaked,
                            "threads": threading.active_count()}) + "\n")
    if leaked:
        return  # a blocked module got in anyway: a child would run baseline code for the student's
    running = {}  # pid -> (job, deadline, started)
    stdin_open = True
    buffered = b""
    while stdin_open or running:
        ready, _, _ = select.select([0] if stdin_open else [], [], [], 0.05)
        if ready:
            chunk = os.read(0, 65536)
            if not chunk:
                stdin_open = False
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                if not line.strip():
                    continue
                job = json.loads(line)
                job["close_fds"] = [reply.fileno()]
                pid = os.fork()
                if pid == 0:
                    _child(base, job, plan.get("rebase"))
                running[pid] = (job, time.monotonic() + float(job["timeout"]), time.monotonic())
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid not in running:
                continue
            job, _, started = running.pop(pid)
            _end_job(pid, job)
            code = os.waitstatus_to_exitcode(status)
            reply.write(json.dumps({"job": job["job"], "returncode": code,
                                    "seconds": time.monotonic() - started}) + "\n")
        now = time.monotonic()
        for pid, (job, deadline, started) in list(running.items()):
            if now > deadline:
                _end_job(pid, job)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                running.pop(pid)
                reply.write(json.dumps({"job": job["job"], "returncode": None, "timed_out": True,
                                        "seconds": now - started}) + "\n")
        if not stdin_open and not ready and not running:
            break


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", required=True, help="the checkout whose code and tests run")
    parser.add_argument("--ids", help="a file with one test id a line")
    parser.add_argument("--out", help="where the subunit v2 stream goes")
    parser.add_argument("--nonce", default="", help="written into the stream's markers")
    parser.add_argument("--serve", help="a JSON preload plan: run as the fork server")
    parser.add_argument("--site-packages", action="append", default=[],
                        help="(with python -S) site dirs to add; then sys.path keeps only the "
                             "tree, these dirs and the base Python's own")
    args = parser.parse_args()
    if args.site_packages:
        isolate_path(args.tree, args.site_packages)
    if args.serve:
        serve(args.tree, args.serve)
        return
    sys.path.insert(0, args.tree)
    with open(args.ids) as fh:
        wanted = [line.strip() for line in fh if line.strip()]
    run_ids(args.tree, wanted, args.out, args.nonce)


if __name__ == "__main__":
    main()
