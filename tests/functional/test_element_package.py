"""Element packages: a third-party Python package ships elements.

tests/fixtures/element-package is ``sysext-example-elements``: its element
``example-motd`` (with a test case) is package data, registered by the entry
point ``example = "sysext_example_elements:elements_dir"`` in the group
``sysext_builder.elements``.  The test installs it into a throwaway
virtualenv (``--system-site-packages`` provides sysext-builder and its
dependencies; nothing is downloaded) and builds from it with that venv's
Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import fixtures
import testtools

from sysext_builder import plugins
from tests.functional import base

PACKAGE = base.FIXTURES / "element-package"
ENTRY_POINT = "entry point example (sysext_example_elements:elements_dir)"


def _run(argv: list[str], env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600, check=False)


class TestElementPackage(testtools.TestCase):
    """One venv for the class: creating it and installing takes seconds."""

    venv: Path
    python: Path
    scratch: Path

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.scratch = Path(os.path.realpath(os.environ.get("TMPDIR", "/tmp"))) / \
            f"sysext-element-package-{os.getpid()}"
        shutil.rmtree(cls.scratch, ignore_errors=True)
        cls.scratch.mkdir()
        cls.venv = cls.scratch / "venv"
        made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(cls.venv)])
        if made.returncode != 0:
            shutil.rmtree(cls.scratch, ignore_errors=True)
            raise unittest.SkipTest(f"cannot create a virtualenv: {made.stderr.strip()}")
        cls.python = cls.venv / "bin" / "python"
        source = cls.scratch / "package"  # build outside the repository: no build/ left there
        shutil.copytree(PACKAGE, source)
        installed = _run([str(cls.python), "-m", "pip", "install", "--quiet", "--no-index",
                          "--no-deps", "--no-build-isolation", str(source)])
        if installed.returncode != 0:
            shutil.rmtree(cls.scratch, ignore_errors=True)
            raise AssertionError(f"pip install of the fixture package failed:\n"
                                 f"{installed.stdout}{installed.stderr}")

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.scratch, ignore_errors=True)
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def sysext(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "ELEMENTS_PATH"}
        return _run([str(self.python), "-m", "sysext_builder", *args], env=env, cwd=self.tmp)

    def test_not_installed_outside_the_venv(self) -> None:
        self.assertNotIn("example", plugins.available(plugins.ELEMENTS_NAMESPACE))

    def test_element_info_shows_the_entry_point(self) -> None:
        proc = self.sysext("sysext-element-info", "--json", "example-motd")
        self.assertEqual(0, proc.returncode, proc.stderr)
        element = json.loads(proc.stdout)["elements"][0]
        self.assertEqual(("example-motd", ENTRY_POINT), (element["name"], element["origin"]))
        self.assertTrue(element["path"].startswith(str(self.venv)), element["path"])
        text = self.sysext("sysext-element-info", "example-motd")
        self.assertIn(f"[{ENTRY_POINT}]", text.stdout)

    def test_builds_from_the_package(self) -> None:
        out = self.tmp / "out"
        proc = self.sysext("sysext-create", "example-motd", "--os-id", "_any",
                           "-t", "directory", "-o", f"{out}/")
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual("Built from an element package.\n",
                         (out / "example-motd/usr/lib/motd.d/example").read_text())

    def test_lint_and_test_cases_of_the_package(self) -> None:
        installed = self.venv / "lib"
        element = next(installed.glob("python3*/site-packages/sysext_example_elements/"
                                      "elements/example-motd"))
        self.assertTrue(os.access(element / "install.d/50-example-motd", os.X_OK),
                        "the wheel lost the hook's executable bit")
        lint = self.sysext("sysext-element-lint", str(element))
        self.assertEqual((0, ""), (lint.returncode, lint.stdout), lint.stderr)
        tests = self.sysext("sysext-test-elements", "example-motd")
        self.assertEqual(0, tests.returncode, tests.stdout + tests.stderr)
        self.assertIn("PASS example-motd/motd", tests.stdout)
