"""Finding and running element test cases (the format: :mod:`.cases`)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sysext_builder.authoring.testing import run as caserun
from sysext_builder.authoring.testing.cases import (
    TEST_ELEMENTS,
    Case,
    CaseFailed,
    CaseResult,
    Options,
)
from sysext_builder.errors import Interrupted, SysextBuilderError, UsageError
from sysext_builder.model import discovery
from sysext_builder.model.element import valid_name

LOG = logging.getLogger(__name__)


def _cases_of(element: str, directory: Path) -> list[Case]:
    tests = directory / TEST_ELEMENTS
    if not tests.is_dir():
        return []
    return [Case(element, p.name, p) for p in sorted(tests.iterdir())
            if p.is_dir() and not p.name.startswith(".") and valid_name(p.name)]


def find_cases(search_path_dirs: Sequence[str], environ: Mapping[str, str],
               selected: Sequence[str] = ()) -> list[Case]:
    """Cases of the ``selected`` elements (``ELEMENT`` or ``ELEMENT/CASE``), or of every
    element on the search path that has ``test-elements/``."""
    catalog = discovery.index(search_path_dirs, environ)
    if not selected:
        return [case for name in catalog.names()
                for case in _cases_of(name, catalog.location(name).path / name)]
    result: list[Case] = []
    for item in selected:
        name, _, case_name = item.partition("/")
        element = catalog.get(name)
        cases = _cases_of(name, element.path)
        if case_name:
            cases = [c for c in cases if c.name == case_name]
        if not cases:
            what = f"no test case {case_name!r}" if case_name else "no test cases"
            raise UsageError(f"element {name!r} ({element.path}) has {what}",
                             hint=f"cases are element directories in "
                                  f"{element.path / TEST_ELEMENTS}/")
        result += [c for c in cases if c not in result]
    return result


def run_all(cases: Sequence[Case], options: Options,
            report: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Run every case in order; ``report`` sees each result as soon as it is known."""
    results = []
    for case in cases:
        result = run_case(case, options)
        if report is not None:
            report(result)
        results.append(result)
    return results


def run_case(case: Case, options: Options) -> CaseResult:
    """Build ``case`` and check the result; never raises for a failing case."""
    start = time.monotonic()
    out = Path(tempfile.mkdtemp(prefix=f"sysext-test-{case.name}-", dir=options.workdir))
    result = CaseResult(case=case, passed=True)
    try:
        result.notes = caserun.build_and_check(case, options, out)
    except CaseFailed as exc:
        result = dataclasses.replace(result, passed=False, reason=exc.reason,
                                     details=exc.details)
    except Interrupted:
        raise  # stops the whole run, not just this case
    except SysextBuilderError as exc:
        details = exc.hint.splitlines() if exc.hint else []
        result = dataclasses.replace(result, passed=False, details=details,
                                     reason=f"build failed (exit {exc.exit_code}): {exc}")
    finally:
        result.seconds = time.monotonic() - start
        if options.keep:
            result.kept = out
        else:
            shutil.rmtree(out, ignore_errors=True)
    LOG.debug("%s: %s in %.1fs", case.label, "pass" if result.passed else "fail",
              result.seconds)
    return result
