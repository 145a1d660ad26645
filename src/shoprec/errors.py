"""Every error shoprec raises on purpose, under one root that carries the command's exit code.

`shoprec.cli.main` turns a `ShoprecError` into its message on stderr and its `exit_code`; any
other exception is a bug and keeps its traceback. Exit codes (also in the README):

| code | meaning |
|---|---|
| 0 | success |
| 1 | the command ran and said no: a failed notebook, a refused gate, a failed check |
| 2 | bad input: an unknown parameter, run, environment or file, a malformed setting |
| 3 | the work is done and kept, but the tracking store could not record it |
| 128 + N | stopped by signal N: 130 for SIGINT (Ctrl-C), 143 for SIGTERM |
"""

import signal

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_TRACKED = 3
EXIT_INTERRUPTED = 128 + signal.SIGINT


def exit_code_of_signal(signum: int) -> int:
    """The exit code of a command stopped by signal `signum` (the shell's 128 + N)."""
    return 128 + signum


class ShoprecError(Exception):
    """Root of shoprec's errors; `exit_code` is what the command line exits with."""

    exit_code: int = EXIT_REFUSED


class ConfigurationError(ShoprecError, ValueError):
    """A setting (environment variable or settings file) that is malformed."""

    exit_code = EXIT_BAD_INPUT


class UsageError(ShoprecError, ValueError):
    """A command given arguments it cannot act on (names the argument and what was expected)."""

    exit_code = EXIT_BAD_INPUT


class NotFittedError(ShoprecError, AttributeError):
    """A model asked to recommend or save before it was fitted or loaded."""
