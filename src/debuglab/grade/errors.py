"""The grader's typed errors (all DebuglabError: the CLI prints them with their exit code)."""

from debuglab.core.errors import DebuglabError


class GradeError(DebuglabError):
    """The grader could not be set up (no lab venv, no catalog, a bad option)."""


class SubmissionError(GradeError):
    """A submission cannot be read: not a git checkout, not a diff, too large."""


class ApplyError(DebuglabError):
    """The student's in-scope hunks do not apply to the baseline."""


class SandboxError(DebuglabError):
    """No uid or cgroup could be claimed for a job."""
