"""Boot assertions: what a booted VM must show, and what the VM reported.

An assertion is one line ``KIND ARGUMENT`` (in a test case's ``expect`` file
after the word ``boot``, or given to ``sysext-check --boot``).  The guest
side (``boot-check``) checks them once the boot settled and writes one
``RESULT PASS|FAIL <assertion> :: <detail>`` line each to the result port;
:func:`parse_report` reads that port's text and :func:`failures` turns it
into the failures of the run, a missing result or an unfinished boot
included.

Kinds::

    active UNIT           the unit is active (waits up to 30 s)
    started UNIT          the unit was started in this boot (it may have ended; waits 20 s)
    not-started UNIT      the unit's process did not run in this boot (e.g. its
                          condition failed)
    not-failed UNIT       the unit is not in the failed state
    no-failed-units       no unit failed
    merged NAME           systemd-sysext status lists the extension NAME
    file /PATH            the path exists in the VM
    user NAME             the account exists (getent passwd)
    address ADDR/PREFIX   an interface has the address (waits up to 30 s)
    journal-lacks TEXT    no journal line of this boot contains TEXT
    run COMMAND           the shell command exits 0 within 60 s
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sysext_builder.authoring.testing import vm
from sysext_builder.errors import ElementFormatError, UsageError
from sysext_builder.install.cache import Cache
from sysext_builder.staging import debian
from sysext_builder.staging.base import BaseTree, open_base
from sysext_builder.sysext import activation

#: kind -> what its argument must look like (None: no argument)
KINDS: dict[str, re.Pattern[str] | None] = {
    "active": re.compile(r"[A-Za-z0-9:_.@\\-]+"),
    "started": re.compile(r"[A-Za-z0-9:_.@\\-]+"),
    "not-failed": re.compile(r"[A-Za-z0-9:_.@\\-]+"),
    "not-started": re.compile(r"[A-Za-z0-9:_.@\\-]+"),
    "no-failed-units": None,
    "merged": re.compile(r"[A-Za-z0-9_.-]+"),
    "file": re.compile(r"/\S+"),
    "user": re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\$?"),
    "address": re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}"),
    "journal-lacks": re.compile(r".+"),
    "run": re.compile(r".+"),
}
_RESULT = re.compile(r"RESULT (PASS|FAIL) (.*?) :: (.*)")


def parse_assertion(text: str, where: str) -> str:
    """The assertion ``text`` normalised (one blank after the kind); errors name ``where``."""
    kind, _, arg = text.strip().partition(" ")
    arg = arg.strip()
    if kind not in KINDS:
        raise ElementFormatError(f"{where}: unknown boot assertion {kind!r}",
                                 hint="one of: " + ", ".join(KINDS))
    shape = KINDS[kind]
    if shape is None:
        if arg:
            raise ElementFormatError(f"{where}: 'boot {kind}' takes no argument")
        return kind
    if not shape.fullmatch(arg):
        raise ElementFormatError(f"{where}: 'boot {kind}' needs an argument like "
                                 f"{_EXAMPLES[kind]!r}, got {arg!r}")
    return f"{kind} {arg}"


_EXAMPLES = {"active": "chronyd.service", "started": "glean@ens2.service",
             "not-failed": "waagent.service", "not-started": "migrate.service",
             "merged": "azure-oem", "file": "/usr/bin/glean",
             "user": "_chrony", "address": "192.0.2.10/24", "journal-lacks": "TEXT",
             "run": "COMMAND"}


@dataclass(frozen=True)
class Result:
    passed: bool
    assertion: str
    detail: str


@dataclass
class Report:
    """What the guest wrote to the result port."""

    results: list[Result] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    #: "--- NAME" section -> its lines (systemd-sysext status, failed units, journal ...)
    sections: dict[str, list[str]] = field(default_factory=dict)
    complete: bool = False  # the guest reached its END line

    def section(self, name: str) -> list[str]:
        return self.sections.get(name, [])


def parse_report(text: str) -> Report:
    report = Report()
    current: list[str] | None = None
    for line in text.splitlines():
        if line == "END":
            report.complete = True
            current = None
        elif line.startswith("--- "):
            current = report.sections.setdefault(line[4:], [])
        elif current is not None:
            current.append(line)
        elif (match := _RESULT.fullmatch(line)) is not None:
            report.results.append(Result(match[1] == "PASS", match[2], match[3]))
        elif line.startswith("INFO "):
            report.info.append(line[5:])
    return report


def failures(report: Report, assertions: Sequence[str], *, timed_out: bool) -> list[str]:
    """Every failed or unanswered assertion, and why the boot did not finish."""
    problems = [f"{r.assertion}: {r.detail}" for r in report.results if not r.passed]
    answered = {r.assertion for r in report.results}
    problems += [f"{a}: no result (the check did not get to it)" for a in assertions
                 if a not in answered]
    if not report.complete:
        problems.append("the boot check did not finish" +
                        (" before the timeout" if timed_out else "") +
                        ": see the console log")
    return problems


@dataclass(frozen=True)
class BootOutcome:
    """One boot of a test: its failures and the lines worth a report."""

    failures: list[str]
    notes: list[str]
    seconds: float
    report: Report


def boot_tree_for(base: BaseTree | None, boot_base: Path | str | None,
                  cache: Cache) -> BaseTree:
    """The tree to boot: ``boot_base`` when given; else the ``vm`` variant of a
    named base; else the base itself (it must have a kernel)."""
    if boot_base is not None:
        return open_base(boot_base, cache.subdir("bases"))
    if base is None:
        raise UsageError("--boot needs a base to boot: --base or --boot-base",
                         hint="e.g. --base debian:trixie (booted as debian:trixie/vm)")
    named = debian.parse(str(base.source))
    if named is not None:
        return open_base(replace(named, variant="vm").spec, cache.subdir("bases"))
    return base


def run(images: Sequence[Path], assertions: Sequence[str], tree: BaseTree, workdir: Path, *,
        config_drive: Path | None = None, timeout_s: float = 900.0) -> BootOutcome:
    """Boot ``tree`` with ``images`` in /var/lib/extensions and check ``assertions``.

    A target whose systemd cannot start an extension's units by itself gets the
    host helper (:mod:`sysext_builder.sysext.activation`), as its base image
    would have to."""
    version = debian.systemd_version(tree.path)
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    notes = [f"boot: {tree.source} (systemd {version or 'unknown'})"]
    if activation.needs_host_helper(version):
        files[f"etc/systemd/system/{activation.HELPER_UNIT}"] = activation.helper_unit()
        links.update(activation.helper_links("etc/systemd/system"))
        notes.append(f"boot: systemd {version} needs the host helper "
                     f"{activation.HELPER_UNIT}: installed in the VM")
    spec = vm.VMSpec(base=tree.path, images=images, assertions=assertions, files=files,
                     links=links, config_drive=config_drive)
    ran = vm.boot(spec, workdir, timeout_s)
    report = parse_report(ran.results)
    problems = failures(report, assertions, timed_out=ran.timed_out)
    notes.append(f"boot: {len(assertions) - len([p for p in problems if ':' in p])} of "
                 f"{len(assertions)} assertions held, {ran.seconds:.0f} s with {ran.accel}"
                 + "".join(f"; {line}" for line in report.info[:1]))
    if problems:
        notes += [f"boot: failed unit: {line}" for line in report.section("failed units")]
    return BootOutcome(problems, notes, ran.seconds, report)
