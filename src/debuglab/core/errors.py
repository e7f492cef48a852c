"""Typed errors. The CLI turns each into one clear message and its exit code."""


class DebuglabError(Exception):
    """Base of every error the kit reports to a user; the message says what to do."""

    exit_code = 2


class ProcError(DebuglabError):
    """A subprocess failed or timed out; the message carries its output."""

    exit_code = 3

    def __init__(self, message: str, *, returncode: int | None = None, output: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.output = output


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken like Ctrl-C: what is half-built is removed, children are killed."""


def terminate_like_interrupt() -> None:
    """From now on SIGTERM raises Terminated in the main thread (its cleanup runs)."""
    import signal

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


# errno of an OSError the user can fix by choosing another path (exit 2); others are the
# machine's (a full disk, an I/O error: exit 3)
_USER_ERRNOS = {"ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "EEXIST", "EBUSY", "ENAMETOOLONG",
                "ELOOP", "ENOTEMPTY", "EXDEV", "EINVAL"}


def explain_os_error(exc: OSError) -> tuple[int, str]:
    """(exit code, one line naming the path and what to do) for an OSError."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p)
    what = exc.strerror or str(exc)
    if name in _USER_ERRNOS:
        fix = {"EROFS": "the file system is read-only: choose a folder you can write",
               "EACCES": "you may not write there: choose a folder you own",
               "EPERM": "you may not write there: choose a folder you own",
               "ENOTDIR": "part of that path is a file, not a folder: choose another path",
               "EBUSY": "it is in use (a mount point?): choose a folder inside it",
               "EXDEV": "it is on another file system: choose a folder beside it"}.get(name, "check the path")
        return 2, f"{paths or 'a path'}: {what} ({fix})"
    return 3, f"{paths or 'the system'}: {what} (the machine refused: check free disk space and the logs)"


class ForkServerError(DebuglabError):
    """The fork server could not start or stopped answering."""
