"""The one exception tree of sysext-builder.

Every error a user can cause is a :class:`SysextBuilderError` subclass with a
one-line message, an optional hint and a distinct exit code.  Only the CLI
turns these into output and exit statuses; library code raises them.

Exit codes (kept stable, documented in doc/reference.rst):

====  ==========================================
  1   unexpected internal error (a bug)
  2   usage error (bad command line)
 10   malformed element file
 11   element not found
 12   virtual name without a selected provider
 13   conflicting providers
 14   dependency cycle
 15   plugin could not be loaded
 16   configuration file invalid
 17   sysext-element-lint found errors
 18   sysext-test-elements: a test case failed
 20   a hook failed
 21   staging tree breaks the sysext rules
 22   a required tool is missing
 23   extension-release / os-release invalid
 24   writing the output failed
 25   build environment unusable (not root, ...)
 26   package or source installation failed
 27   base unusable (archive corrupt, truncated or empty; not an OS tree)
 30   image incompatible with the target
 31   image unreadable or not an extension
130   interrupted (SIGINT)
143   terminated (SIGTERM)
====  ==========================================
"""

from __future__ import annotations

import signal


class SysextBuilderError(Exception):
    """Root of every error a user can cause."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SysextBuilderError):
    exit_code = 2


class ElementFormatError(SysextBuilderError):
    """An element file is malformed (names the file and line)."""

    exit_code = 10


class MissingElementError(SysextBuilderError):
    exit_code = 11


class MissingProviderError(SysextBuilderError):
    exit_code = 12


class ProvidesConflictError(SysextBuilderError):
    exit_code = 13


class DependencyCycleError(SysextBuilderError):
    exit_code = 14


class PluginError(SysextBuilderError):
    exit_code = 15


class ConfigError(SysextBuilderError):
    exit_code = 16


class HookFailedError(SysextBuilderError):
    exit_code = 20


class TreeRuleError(SysextBuilderError):
    exit_code = 21


class ToolMissingError(SysextBuilderError):
    exit_code = 22


class ReleaseError(SysextBuilderError):
    exit_code = 23


class OutputError(SysextBuilderError):
    exit_code = 24


class EnvironmentUnusableError(SysextBuilderError):
    exit_code = 25


class InstallError(SysextBuilderError):
    exit_code = 26


class BaseError(SysextBuilderError):
    """``--base`` names something that cannot be a base: an archive that does
    not unpack, a tree without os-release, a top-level ``usr`` that is a link."""

    exit_code = 27


class IncompatibleError(SysextBuilderError):
    exit_code = 30


class ImageError(SysextBuilderError):
    exit_code = 31


class Interrupted(SysextBuilderError):
    """Raised when the build receives SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; nothing was written")
        self.exit_code = 128 + signum


class LintError(SysextBuilderError):
    """``sysext-element-lint`` found errors (each printed as a finding)."""

    exit_code = 17


class ElementTestsFailed(SysextBuilderError):
    """At least one element test case failed (each is reported on its own)."""

    exit_code = 18
