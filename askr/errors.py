"""Exit codes and the exceptions that carry them.

The master stops respawning workers when a worker exits with one of the boot
failure codes below: forking again would fail the same way, so looping would
only fill the logs.  Codes 0 and 1 keep their usual meaning (done, generic
failure); the others are chosen clear of the shell's 126-165 range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = 0
FAILURE = 1

# The configuration (file or command line) is invalid; nothing was started.
CONFIG_INVALID = 2

# libphp refused to start (bad ini, missing zend_extension, ZTS build).
# A worker exiting with it makes the master halt instead of respawning.
PHP_INIT_FAILED = 3

# io_uring_setup failed and io = "uring" was forced (no epoll fallback).
RING_SETUP_FAILED = 4

# The worker script or application failed before its first request.
WORKER_BOOT_FAILED = 5

# A listener could not be bound (address in use, no permission).
BIND_FAILED = 6


class HaltServer(BaseException):
    """Stop the whole server with an exit code.

    Derived from BaseException so that a broad ``except Exception`` in
    application glue cannot swallow it on the way up to the supervisor.
    """

    def __init__(self, reason: str, exit_code: int = FAILURE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


@dataclass(frozen=True)
class Problem:
    """One finding about a configuration, located as precisely as known."""

    message: str
    file: str = ""
    line: int | None = None
    section: str = ""
    key: str = ""
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line:
            where = f"{where}:{self.line}"
        what = ""
        if self.section:
            what = f"[{self.section}]"
        if self.key:
            what = f"{what} {self.key}" if what else self.key
        prefix = "warning: " if self.severity == "warning" else ""
        if what:
            return f"{where}: {prefix}{what}: {self.message}"
        return f"{where}: {prefix}{self.message}"


@dataclass
class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists every finding."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = CONFIG_INVALID

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
