"""Typed errors. The CLI turns each into one clear message and its exit code."""


class DebuglabError(Exception):
    """Base of every error the kit reports to a user; the message says what to do."""

    exit_code = 2


class CatalogError(DebuglabError):
    """A bug folder is malformed (the message names the file and the field)."""


class UnknownBugError(DebuglabError):
    """A bug id that the catalog does not hold."""


class UpstreamError(DebuglabError):
    """An upstream sdist could not be had, or its hash does not match the lock."""

    exit_code = 3


class WorkspaceError(DebuglabError):
    """The lab workspace is missing, foreign or cannot be built."""


class InjectError(DebuglabError):
    """A patch does not apply, or the checkout is not the one the bug is for."""


class StudentWorkError(InjectError):
    """The checkout holds uncommitted student work and --force was not given."""


class ProcError(DebuglabError):
    """A subprocess failed or timed out; the message carries its output."""

    exit_code = 3

    def __init__(self, message: str, *, returncode: int | None = None, output: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.output = output


class VerifyFailed(DebuglabError):
    """A bug did not behave as its bug.toml promises."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken like Ctrl-C: what is half-built is removed, children are killed."""


def terminate_like_interrupt() -> None:
    """From now on SIGTERM raises Terminated in the main thread (its cleanup runs)."""
    import signal

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
