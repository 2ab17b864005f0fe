"""Element packages: a third-party Python package ships elements.

tests/fixtures/element-package is ``sysext-example-elements``: its element
``example-motd`` (with a test case) is package data, registered by the entry
point ``example = "sysext_example_elements:elements_dir"`` in the group
``sysext_builder.elements``.  The test builds it into a wheel with this
interpreter's own pip and setuptools (>= 70.1 provides bdist_wheel; nothing is
downloaded), installs the wheel with ``pip install --no-deps --target DIR`` and
runs sysext-builder with ``DIR`` on PYTHONPATH: the installed distribution's
entry point is discovered and built from.  No venv: a venv made from a venv's
interpreter sees the base interpreter's site-packages, not this one's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fixtures
import testtools

from sysext_builder import plugins
from tests.base import pip_env
from tests.functional import base

PACKAGE = base.FIXTURES / "element-package"
ENTRY_POINT = "entry point example (sysext_example_elements:elements_dir)"


def _run(argv: list[str], env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600, check=False)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = pip_env()
    for name in ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_FIND_LINKS",
                 "PIP_REQUIRE_VIRTUALENV", "PYTHONPATH"):
        env.pop(name, None)
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], env=env)


class TestElementPackage(testtools.TestCase):
    """One wheel and one install for the class: building takes seconds."""

    scratch: Path
    target: Path

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        base.require("tools", importlib.util.find_spec("setuptools.command.bdist_wheel")
                     is not None, "building the element package needs setuptools>=70.1 "
                     f"(bdist_wheel) in {sys.prefix}: pip install 'setuptools>=70.1'")
        cls.scratch = Path(os.path.realpath(os.environ.get("TMPDIR", "/tmp"))) / \
            f"sysext-element-package-{os.getpid()}"
        shutil.rmtree(cls.scratch, ignore_errors=True)
        cls.scratch.mkdir()
        try:
            source = cls.scratch / "package"  # build outside the repository: no build/ there
            shutil.copytree(PACKAGE, source)
            wheels = cls.scratch / "wheels"
            built = _pip("wheel", "--quiet", "--no-index", "--no-deps",
                         "--no-build-isolation", "-w", str(wheels), str(source))
            if built.returncode != 0:
                raise AssertionError(f"pip wheel of the fixture package failed:\n"
                                     f"{built.stdout}{built.stderr}")
            wheel = [str(w) for w in wheels.glob("sysext_example_elements-1.0.0-*.whl")]
            if len(wheel) != 1:
                raise AssertionError(f"expected one wheel, found {os.listdir(wheels)}")
            cls.target = cls.scratch / "site"
            installed = _pip("install", "--quiet", "--no-index", "--no-deps",
                             "--target", str(cls.target), *wheel)
            if installed.returncode != 0:
                raise AssertionError(f"pip install of the fixture wheel failed:\n"
                                     f"{installed.stdout}{installed.stderr}")
        except BaseException:
            shutil.rmtree(cls.scratch, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.scratch, ignore_errors=True)
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def sysext(self, *args: str, installed: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a console script; ``installed``: with the package's target on PYTHONPATH."""
        env = {k: v for k, v in os.environ.items() if k != "ELEMENTS_PATH"}
        env["PYTHONPATH"] = os.pathsep.join(
            [*([str(self.target)] if installed else []), str(base.REPO),
             *filter(None, [os.environ.get("PYTHONPATH")])])
        return _run([sys.executable, "-m", "sysext_builder", *args], env=env, cwd=self.tmp)

    def test_installed_as_a_distribution_with_the_entry_point(self) -> None:
        info = next(self.target.glob("sysext_example_elements-1.0.0.dist-info"))
        self.assertIn("[sysext_builder.elements]\nexample = sysext_example_elements:"
                      "elements_dir", (info / "entry_points.txt").read_text())

    def test_not_installed_outside_the_target(self) -> None:
        self.assertNotIn("example", plugins.available(plugins.ELEMENTS_NAMESPACE))
        proc = self.sysext("sysext-element-info", "example-motd", installed=False)
        self.assertNotEqual(0, proc.returncode, proc.stdout)
        self.assertIn("example-motd", proc.stderr)

    def test_element_info_shows_the_entry_point(self) -> None:
        proc = self.sysext("sysext-element-info", "--json", "example-motd")
        self.assertEqual(0, proc.returncode, proc.stderr)
        element = json.loads(proc.stdout)["elements"][0]
        self.assertEqual(("example-motd", ENTRY_POINT), (element["name"], element["origin"]))
        self.assertTrue(element["path"].startswith(f"{self.target}/"), element["path"])
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
        element = self.target / "sysext_example_elements/elements/example-motd"
        self.assertTrue(os.access(element / "install.d/50-example-motd", os.X_OK),
                        "the wheel lost the hook's executable bit")
        lint = self.sysext("sysext-element-lint", str(element))
        self.assertEqual((0, ""), (lint.returncode, lint.stdout), lint.stderr)
        tests = self.sysext("sysext-test-elements", "example-motd")
        self.assertEqual(0, tests.returncode, tests.stdout + tests.stderr)
        self.assertIn("PASS example-motd/motd", tests.stdout)
