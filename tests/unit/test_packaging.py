"""A wheel built from the tree ships the built-in elements with their exec bits.

The wheel is built from a copy of the working tree (so uncommitted changes
count and the real tree gets no ``build/`` directory), in a fresh git
repository of its own: pbr ships package data only for git-tracked files.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from tests.base import REPO_ROOT, TestCase

_IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".stestr", ".mypy_cache",
    ".ruff_cache", ".venv", "out", "AUTHORS", "ChangeLog")
DATA_DIRS = ("sysext_builder/elements", "sysext_builder/lib")
PROBE_ELEMENT = "zz-packaging-probe"


def _missing_tools() -> str | None:
    if importlib.util.find_spec("pbr") is None:
        return "pbr is not installed"
    # Read setuptools' version from its metadata: importing it here, after the
    # stdlib distutils was imported, trips setuptools' distutils hack.
    try:
        setuptools = tuple(int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        setuptools = (0, 0)
    has_bdist_wheel = importlib.util.find_spec("wheel") is not None or setuptools >= (70, 1)
    if not has_bdist_wheel:
        return "neither the 'wheel' package nor setuptools>=70.1 (bdist_wheel) is installed"
    if shutil.which("git") is None:
        return "git is not installed (pbr needs git metadata)"
    return None


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


def _executables(root: Path) -> dict[str, bool]:
    """Relative path -> executable? for every file under the package data dirs."""
    result = {}
    for data_dir in DATA_DIRS:
        base = root / data_dir
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                path = Path(dirpath) / name
                if path.is_symlink():
                    continue
                rel = path.relative_to(root).as_posix()
                result[rel] = bool(path.stat().st_mode & 0o111)
    return result


def _add_probe(src: Path) -> None:
    """An element hook and a lib script, so exec bits are tested today."""
    probe = src / "sysext_builder" / "elements" / PROBE_ELEMENT
    (probe / "install.d").mkdir(parents=True)
    (probe / "README.rst").write_text("Packaging test probe\n")
    hook = probe / "install.d" / "50-probe"
    hook.write_text("#!/bin/bash\nset -eu -o pipefail\n")
    hook.chmod(0o755)
    lib = src / "sysext_builder" / "lib"
    lib.mkdir(exist_ok=True)
    script = lib / "zz-packaging-probe.bash"
    script.write_text("# sourced by hooks\n")
    script.chmod(0o755)


def _build(src: Path, out: Path) -> tuple[Path | None, str]:
    """Build the wheel; (path, "") or (None, what went wrong)."""
    env = {**os.environ, "PBR_VERSION": "0.0.0"}  # a fresh repo has no tags or commits
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    if proc.returncode != 0:
        output = proc.stdout[-3000:] + proc.stderr[-3000:]
        return None, f"pip wheel exited {proc.returncode}:\n{output}"
    wheels = sorted(out.glob("sysext_builder-*.whl"))
    if len(wheels) != 1:
        return None, f"expected one wheel, found {[w.name for w in out.iterdir()]}"
    return wheels[0], ""


class TestWheel(TestCase):
    """One wheel per class (per test worker): building takes a few seconds."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.skip_reason = _missing_tools()
        cls.build_error = ""
        if cls.skip_reason:
            return
        cls.tmp = Path(tempfile.mkdtemp(prefix="sysext-builder-wheel-test-"))
        try:
            cls.src = cls.tmp / "src"
            shutil.copytree(REPO_ROOT, cls.src, ignore=_IGNORE, symlinks=True)
            _add_probe(cls.src)
            _git(cls.src, "init", "-q")
            _git(cls.src, "add", "-A")
            cls.wheel, cls.build_error = _build(cls.src, cls.tmp / "wheelhouse")
            cls.modes = {}
            if cls.wheel is not None:
                with zipfile.ZipFile(cls.wheel) as archive:
                    cls.modes = {info.filename: info.external_attr >> 16
                                 for info in archive.infolist()}
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if not cls.skip_reason:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        if self.skip_reason:
            self.skipTest(f"cannot build a wheel here: {self.skip_reason}")
        self.assertEqual("", self.build_error, "building the wheel failed")

    def test_builtin_elements_have_readme(self) -> None:
        elements = sorted(p.name for p in (self.src / "sysext_builder" / "elements").iterdir()
                          if p.is_dir())
        self.assertIn(PROBE_ELEMENT, elements)
        self.assertIn("azure-oem", elements)
        missing = [e for e in elements
                   if f"sysext_builder/elements/{e}/README.rst" not in self.modes]
        self.assertEqual([], missing, "elements missing from the wheel (git-tracked?)")

    def test_every_data_file_shipped_with_its_exec_bit(self) -> None:
        source = _executables(self.src)
        self.assertTrue(source[f"sysext_builder/elements/{PROBE_ELEMENT}/install.d/50-probe"])
        self.assertTrue(source["sysext_builder/lib/zz-packaging-probe.bash"])
        problems = []
        for rel, executable in sorted(source.items()):
            if rel not in self.modes:
                problems.append(f"{rel}: not in the wheel")
            elif executable and not self.modes[rel] & 0o111:
                problems.append(f"{rel}: executable in the tree, mode "
                                f"{oct(self.modes[rel])} in the wheel")
            elif not executable and self.modes[rel] & 0o111:
                problems.append(f"{rel}: not executable in the tree but in the wheel")
        self.assertEqual([], problems)

    def test_package_metadata(self) -> None:
        self.assertIn("sysext_builder/py.typed", self.modes)
        entry_points = [n for n in self.modes if n.endswith(".dist-info/entry_points.txt")]
        self.assertEqual(1, len(entry_points))
        with zipfile.ZipFile(self.wheel) as archive:
            text = archive.read(entry_points[0]).decode()
        self.assertIn("sysext-element-info = sysext_builder.cli:element_info_main", text)
