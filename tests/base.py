"""Shared helpers for the unit tests: fake catalogs, element trees, CLI runs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import unittest
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import MissingElementError
from sysext_builder.model.element import Element

#: The repository root (this file is tests/base.py).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The on-disk scenario trees.
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "elements"
PACKAGE_DIR = REPO_ROOT / "sysext_builder"


def fixture_dir(scenario: str) -> Path:
    path = FIXTURES / scenario
    if not path.is_dir():
        raise AssertionError(f"fixture scenario {scenario!r} is missing: {path}")
    return path


#: Environment variable naming the kinds of :func:`require` that must hold: a
#: comma-separated subset of :data:`REQUIRE_KINDS` (CI sets all of them).
REQUIRE_ENV = "SYSEXT_TESTS_REQUIRE"
#: What a test may depend on: root, the network (PyPI and the Debian mirror
#: only), and host tools or Python packages.
REQUIRE_KINDS = ("root", "network", "tools")


def required_kinds() -> frozenset[str]:
    """The kinds listed in ``$SYSEXT_TESTS_REQUIRE``; an unknown kind is an error."""
    kinds = frozenset(k.strip() for k in os.environ.get(REQUIRE_ENV, "").split(",")
                      if k.strip())
    unknown = sorted(kinds - set(REQUIRE_KINDS))
    if unknown:
        raise AssertionError(f"{REQUIRE_ENV}={os.environ[REQUIRE_ENV]}: unknown kind(s) "
                             f"{', '.join(unknown)} (known: {', '.join(REQUIRE_KINDS)})")
    return kinds


def require(kind: str, ok: bool, reason: str) -> None:
    """The one way a test skips: skip with ``reason`` unless ``ok``.

    When ``kind`` is listed in ``$SYSEXT_TESTS_REQUIRE`` the missing requirement
    is a failure (AssertionError) with the same reason instead.  Usable in
    ``setUp``, ``setUpClass`` and test methods alike.
    """
    if kind not in REQUIRE_KINDS:
        raise ValueError(f"require: unknown kind {kind!r} (known: {', '.join(REQUIRE_KINDS)})")
    required = required_kinds()  # a misspelt kind fails every test that asks
    if ok:
        return
    if kind in required:
        raise AssertionError(f"{reason} [{REQUIRE_ENV} lists {kind!r}: not skipping]")
    raise unittest.SkipTest(reason)


#: pip run by a test reads no configuration file of this host (/etc/pip.conf,
#: /etc/xdg/pip, ~/.config/pip: os.devnull makes pip skip them all) and never prompts.
PIP_ISOLATION = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1"}


def pip_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: os.environ) with :data:`PIP_ISOLATION` applied."""
    return {**(os.environ if environ is None else environ), **PIP_ISOLATION}


class PipIsolated(fixtures.Fixture):
    """Set :data:`PIP_ISOLATION` in os.environ for the test (pip run in-process or
    by children that inherit the environment)."""

    def _setUp(self) -> None:
        for name, value in PIP_ISOLATION.items():
            self.useFixture(fixtures.EnvironmentVariable(name, value))


class RootLoggerRestored(fixtures.Fixture):
    """The CLI replaces the root logger's handlers; put the test runner's back."""

    def _setUp(self) -> None:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level

        def restore() -> None:
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)

        self.addCleanup(restore)

class FakeCatalog:
    """An in-memory :class:`sysext_builder.model.graph.Catalog`; touches no disk.

    ``spec`` maps an element name to ``(deps, provides)``.
    """

    SEARCHED = "searched: /fake/one, /fake/two"

    def __init__(self, spec: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> None:
        self._elements = {
            name: Element(name=name, path=Path("/fake") / name, origin="fake",
                          deps=tuple(deps), provides=tuple(provides))
            for name, (deps, provides) in spec.items()
        }
        self.loaded: list[str] = []

    def __contains__(self, name: object) -> bool:
        return name in self._elements

    def get(self, name: str) -> Element:
        if name not in self._elements:
            raise MissingElementError(f"element {name!r} not found", hint=self.SEARCHED)
        self.loaded.append(name)
        return self._elements[name]

    def names(self) -> list[str]:
        return sorted(self._elements)

    def load_all(self) -> Iterable[Element]:
        return [self._elements[n] for n in self.names()]

    def searched_hint(self) -> str:
        return self.SEARCHED


def write_tree(root: Path, spec: Mapping[str, Mapping[str, object]],
               order: Sequence[str] | None = None) -> Path:
    """Create element directories under ``root``.

    ``spec`` maps an element name to a mapping of relative file name to
    content: ``str`` is written as a file, ``None`` makes a directory.  The
    keys ``deps`` and ``provides`` (lists of names) become ``element-deps``
    and ``element-provides``.  ``order`` is the order directories are created
    in (to vary directory listing order).
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in order if order is not None else list(spec):
        edir = root / name
        edir.mkdir()
        for key, value in spec[name].items():
            if key in ("deps", "provides"):
                assert isinstance(value, (list, tuple))
                (edir / f"element-{key}").write_text("".join(f"{v}\n" for v in value))
                continue
            target = edir / key
            if value is None:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(str(value))
    return root


@dataclass
class CLIResult:
    code: int
    stdout: str
    stderr: str

    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


class TestCase(testtools.TestCase):
    """testtools.TestCase with helpers to isolate discovery and run the CLI."""

    def isolate_search_path(self, builtin: Path | None = None,
                            entry_dirs: Sequence[tuple[str, Path]] = ()) -> Path:
        """No ELEMENTS_PATH, no installed entry points, and an empty built-in dir.

        Returns the directory standing in for the built-in elements."""
        self.useFixture(fixtures.EnvironmentVariable("ELEMENTS_PATH"))
        if builtin is None:
            builtin = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.paths.builtin_elements_dir", lambda: builtin))
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.plugins.element_dirs", lambda: list(entry_dirs)))
        return builtin

    def _restore_root_logger(self) -> None:
        self.useFixture(RootLoggerRestored())

    def run_cli(self, argv: Sequence[str]) -> CLIResult:
        """Run ``sysext-element-info`` in-process; capture stdout, stderr, exit code."""
        from sysext_builder.cli import element_info

        self._restore_root_logger()  # the CLI replaces the root logger's handlers
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = element_info.main(list(argv))
            except SystemExit as exc:  # argparse usage errors, --help, --version
                code = exc.code if isinstance(exc.code, int) else 1
        return CLIResult(code, out.getvalue(), err.getvalue())


def run_module(args: Sequence[str], env: Mapping[str, str] | None = None,
               cwd: Path | None = None, python_args: Sequence[str] = (),
               timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run ``python [python_args] -m sysext_builder ARGS`` from this source tree."""
    full_env = dict(os.environ)
    full_env.pop("ELEMENTS_PATH", None)
    full_env.update(PIP_ISOLATION)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, *python_args, "-m", "sysext_builder", *args],
        env=full_env, cwd=str(cwd or REPO_ROOT), capture_output=True, timeout=timeout,
        check=False)
