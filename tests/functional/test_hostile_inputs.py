"""Hostile or unlucky inputs through the real commands (issue 12, items 4, 5, 6, 9, 12).

Each test builds its elements and files in a temporary directory (modes such
as set-uid do not survive git) and runs ``sysext-create`` as a user would.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
from pathlib import Path

import fixtures
import testtools

from tests.base import PIP_ISOLATION
from tests.functional import base

IDENTITY = ("--os-id", "sbtest", "--os-version-id", "7", "-a", "x86-64")
SECRET = "s3cret"
#: an alias bomb: nine levels of nine references (9**9 strings if expanded)
BOMB = "\n".join(
    ["- name: img", "  elements: [a]", "  environment:",
     '    A: &a ["x","x","x","x","x","x","x","x","x"]']
    + [f"    {c.upper()}: &{c} [" + ",".join([f"*{p}"] * 9) + "]"
       for p, c in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"
MEMORY_LIMIT = 2 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """sysext-create under a memory limit and a timeout (a bomb must fail fast)."""
    env = {**os.environ, **PIP_ISOLATION}
    env.pop("ELEMENTS_PATH", None)
    return subprocess.run(base.command("sysext-create", *args), capture_output=True,
                          text=True, env=env, timeout=timeout, check=False,
                          preexec_fn=_limited)


class HostileTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.els = self.tmp / "elements"
        self.out = self.tmp / "out"

    def element(self, name: str, files: dict[str, str] | None = None) -> Path:
        path = self.els / name
        path.mkdir(parents=True)
        (path / "README.rst").write_text(f"{name}\n")
        for rel, text in (files or {}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        return path

    def create(self, *args: str) -> subprocess.CompletedProcess[str]:
        return base.run("sysext-create", "--element-path", str(self.els), "-t", "directory",
                        *IDENTITY, *args, timeout=300)

    def assert_one_line_error(self, proc: subprocess.CompletedProcess[str], code: int,
                              text: str) -> None:
        self.assertEqual(code, proc.returncode, proc.stderr)
        errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
        self.assertEqual(1, len(errors), proc.stderr)
        self.assertIn(text, errors[0])
        self.assertNotIn("Traceback", proc.stderr)


class TestConfigValues(HostileTestCase):

    def test_alias_bomb_fails_fast_within_a_memory_limit(self) -> None:
        config = self.tmp / "bomb.yaml"
        config.write_text(BOMB)
        proc = run_limited("--config", str(config), timeout=30)
        self.assert_one_line_error(proc, 16, f"{config}:5: invalid YAML: aliases (*name) are "
                                             "not allowed")

    def test_a_list_in_environment_names_image_key_and_line(self) -> None:
        config = self.tmp / "images.yaml"
        config.write_text("- name: img\n  elements: [a]\n  environment:\n"
                          "    DIB_X: [1, 2]\n")
        proc = run_limited("--config", str(config))
        self.assert_one_line_error(proc, 16, f"{config}:4 (image 'img'): environment: DIB_X: "
                                             "expected a single value")


class TestSecretInSourceUrl(HostileTestCase):

    def test_password_in_an_unreachable_tar_url_is_never_written(self) -> None:
        url = f"http://user:{SECRET}@127.0.0.1:9/x.tar.gz"
        self.element("src", {"source-repository-x": f"x tar /opt/x {url} .\n"})
        cache, logfile = self.tmp / "cache", self.tmp / "build.log"
        proc = self.create("src", "-o", f"{self.out}/src", "--cache-dir", str(cache),
                           "--logfile", str(logfile), "--debug")
        self.assertEqual(26, proc.returncode, proc.stderr)
        self.assertIn("cannot download http://user:***@127.0.0.1:9/x.tar.gz", proc.stderr)
        self.assertNotIn(SECRET, proc.stdout + proc.stderr)
        self.assertTrue(logfile.is_file())
        self.assertNotIn(SECRET, logfile.read_text())
        leaks = [p for p in sorted(cache.rglob("*"))
                 if p.is_file() and SECRET.encode() in p.read_bytes()]
        self.assertEqual([], leaks)

    def test_password_in_an_unreachable_git_url_is_never_written(self) -> None:
        url = f"http://user:{SECRET}@127.0.0.1:9/r.git"
        self.element("src", {"source-repository-r": f"r git /opt/r {url} main\n"})
        cache, logfile = self.tmp / "cache", self.tmp / "build.log"
        proc = self.create("src", "-o", f"{self.out}/src", "--cache-dir", str(cache),
                           "--logfile", str(logfile), "--debug")
        self.assertEqual(26, proc.returncode, proc.stderr)
        self.assertIn("git clone of source repository r", proc.stderr)
        self.assertNotIn(SECRET, proc.stdout + proc.stderr + logfile.read_text())
        self.assertIn("http://user:***@127.0.0.1:9/r.git", logfile.read_text())  # run: git ...
        leaks = [p for p in sorted(cache.rglob("*"))
                 if p.is_file() and SECRET.encode() in p.read_bytes()]
        self.assertEqual([], leaks)


class TestMissingDependency(HostileTestCase):

    def test_named_as_missing_despite_a_broken_unrelated_element(self) -> None:
        self.element("a", {"element-deps": "b\n"})
        self.element("b", {"element-deps": "nosuch\n"})
        self.element("broken", {"element-deps": "not a valid name!\n"})
        proc = self.create("a", "-o", f"{self.out}/a")
        self.assert_one_line_error(proc, 11, "element 'nosuch' not found (required by "
                                             "a -> b -> nosuch)")
        self.assertNotIn("broken", proc.stderr)

    def test_a_broken_element_that_is_needed_is_reported(self) -> None:
        self.element("a", {"element-deps": "broken\n"})
        self.element("broken", {"element-deps": "not a valid name!\n"})
        proc = self.create("a", "-o", f"{self.out}/a")
        self.assert_one_line_error(proc, 10, f"{self.els}/broken/element-deps:1")


class TestModes(HostileTestCase):

    def setUp(self) -> None:
        super().setUp()
        path = self.element("modes", {"static/usr/bin/suid": "#!/bin/sh\n",
                                      "static/usr/share/open": "x\n"})
        os.chmod(path / "static/usr/bin/suid", 0o4755)
        os.chmod(path / "static/usr/share/open", 0o666)

    def test_world_writable_and_setuid_files_are_named_in_a_warning(self) -> None:
        proc = self.create("modes", "-o", f"{self.out}/m")
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn("WARNING extension m ships 1 world-writable entry: usr/share/open (0666)",
                      proc.stderr)
        self.assertIn("WARNING extension m ships 1 set-id file: usr/bin/suid (4755)",
                      proc.stderr)

    def test_strict_refuses_them_and_writes_nothing(self) -> None:
        proc = self.create("modes", "-o", f"{self.out}/m", "--strict")
        self.assert_one_line_error(proc, 21, "--strict: extension m ships 1 world-writable "
                                             "entry: usr/share/open (0666); 1 set-id file: "
                                             "usr/bin/suid (4755)")
        self.assertFalse(self.out.exists() and any(self.out.iterdir()))


class TestSpecialFilesInStatic(HostileTestCase):
    """The copy is staging/buildenv.py's; this holds the promise from the outside."""

    def test_a_fifo_or_socket_is_one_line_naming_element_and_path(self) -> None:
        path = self.element("special")
        (path / "static/usr/share").mkdir(parents=True)
        os.mkfifo(path / "static/usr/share/pipe")
        proc = self.create("special", "-o", f"{self.out}/s")
        self.assert_one_line_error(proc, 21, "element special: static/usr/share/pipe")
        os.unlink(path / "static/usr/share/pipe")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path / "static/usr/share/sock"))
            proc = self.create("special", "-o", f"{self.out}/s")
        self.assert_one_line_error(proc, 21, "element special: static/usr/share/sock")
