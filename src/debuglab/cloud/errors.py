"""The mini-cloud's typed errors (the CLI prints the message and exits with the code)."""

from debuglab.core.errors import DebuglabError


class CloudError(DebuglabError):
    """The mini-cloud could not do what was asked (the message says why and what to do)."""

    exit_code = 3


class LocalConfError(CloudError):
    """A section, option or value that local.conf cannot take, or a local.conf that does not
    parse: the user's input, named with what to write instead."""

    exit_code = 2


class CloudRunning(CloudError):
    """`start` while the cloud runs: nothing was started."""

    exit_code = 1


class CloudNotRunning(CloudError):
    """The command needs a running cloud."""

    exit_code = 1


class PortInUse(CloudError):
    """A port the cloud needs is taken by another program."""

    exit_code = 2


class CodeError(CloudError):
    """The student's edited code does not compile: the message names file and line."""

    exit_code = 2


class CloudStartFailed(CloudError):
    """A service died or did not come up; the message carries the log lines that say why."""

    exit_code = 3
