"""Hostile reads: what the builder reads from a base or an element stays inside it, is
bounded and only of regular files; each case is one line, its exit code, no traceback.

Every command runs with a timeout: a fifo or /dev/zero read whole would hang or
exhaust memory, which fails the test instead of the run.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import fixtures
import testtools

from tests.functional import base

#: seconds any of these commands may take (each is refused before reading much)
TIMEOUT = 60
#: the longest stderr line allowed (500 characters of message plus the prefix and count)
MAX_LINE = 600


class HostileTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.image = self.top / "hello"
        self.write(self.image / "usr/lib/extension-release.d/extension-release.hello",
                   "ID=fakebase\nVERSION_ID=7\n")

    @staticmethod
    def write(path: Path, text: str | bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def run_cmd(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return base.run(name, *args, timeout=TIMEOUT)

    def check(self, *target: str) -> subprocess.CompletedProcess[str]:
        return self.run_cmd("sysext-check", *target, "--systemd-version", "252",
                            "--arch", "x86-64", str(self.image))

    def assertOneLineError(self, done: subprocess.CompletedProcess[str], code: int,
                           *parts: str) -> None:
        """Exit ``code``, an error line (and at most a hint) naming ``parts``, no traceback."""
        self.assertEqual(code, done.returncode, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        lines = [line for line in done.stderr.splitlines() if ": error: " in line
                 or ": hint: " in line]
        errors = [line for line in lines if ": error: " in line]
        self.assertEqual(1, len(errors), done.stderr)
        for part in parts:
            self.assertIn(part, errors[0])
        self.assertLessEqual(max(len(line) for line in done.stderr.splitlines()), MAX_LINE)

    def base_tree(self, etc_link: str | None = "/usr/lib/os-release") -> Path:
        tree = self.top / "base"
        self.write(tree / "usr/lib/os-release", "ID=fakebase\nVERSION_ID=7\n")
        (tree / "etc").mkdir(parents=True, exist_ok=True)
        if etc_link is not None:
            os.symlink(etc_link, tree / "etc/os-release")
        return tree


class TestBaseIdentity(HostileTestCase):

    def test_check_root_reads_the_bases_usr_lib_not_the_hosts(self) -> None:
        tree = self.base_tree()
        done = self.check("--root", str(tree))
        self.assertEqual((0, "compatible\n"), (done.returncode, done.stdout), done.stderr)

    def test_open_base_takes_the_bases_identity(self) -> None:
        base.require_root("opening a --base")
        from sysext_builder.staging.base import open_base

        tree = self.base_tree()
        opened = open_base(tree, self.top / "cache")
        self.assertEqual({"ID": "fakebase", "VERSION_ID": "7"}, opened.os_release)

    def test_link_escaping_by_dotdot_stays_in_the_base(self) -> None:
        tree = self.base_tree("../../../../../../../../usr/lib/os-release")
        done = self.check("--root", str(tree))
        self.assertEqual((0, "compatible\n"), (done.returncode, done.stdout), done.stderr)


class TestUnreadableOsRelease(HostileTestCase):

    def test_check_os_release_dev_zero(self) -> None:
        self.assertOneLineError(self.check("--os-release", "/dev/zero"), 23,
                                "/dev/zero: not a regular file (character device)")

    def test_base_link_to_dev_zero_inside_the_base(self) -> None:
        base.require_root("a device node in the fake base")
        tree = self.base_tree("/dev/zero")
        (tree / "dev").mkdir()
        os.mknod(tree / "dev/zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        self.assertOneLineError(self.check("--root", str(tree)), 23,
                                "etc/os-release", "/dev/zero", "character device")

    def test_base_link_to_the_hosts_dev_zero_is_not_followed(self) -> None:
        tree = self.base_tree("/dev/zero")  # no dev/zero in the tree: falls back
        done = self.check("--root", str(tree))
        self.assertEqual((0, "compatible\n"), (done.returncode, done.stdout), done.stderr)

    def test_fifo(self) -> None:
        tree = self.base_tree(None)
        os.mkfifo(tree / "etc/os-release")
        self.assertOneLineError(self.check("--root", str(tree)), 23,
                                "etc/os-release: not a regular file (fifo)")
        os.mkfifo(self.top / "fifo")
        self.assertOneLineError(self.check("--os-release", str(self.top / "fifo")), 23,
                                "not a regular file (fifo)")

    def test_invalid_utf8(self) -> None:
        tree = self.base_tree(None)
        self.write(tree / "etc/os-release", b"ID=fakebase\nNAME=\xff\n")
        self.assertOneLineError(self.check("--root", str(tree)), 23,
                                "etc/os-release:2: not UTF-8 text")

    def test_100_mb_line_is_refused_and_the_error_is_short(self) -> None:
        path = self.top / "os-release"
        with open(path, "wb") as f:
            f.write(b"ID=")
            f.truncate(100 * 1024 * 1024)  # sparse: one 100 MB line
        self.assertOneLineError(self.check("--os-release", str(path)), 23, "larger than")

    def test_long_line_without_equals_is_ignored_as_systemd_does(self) -> None:
        path = self.write(self.top / "os-release", "x" * 60_000 + "\nID=fakebase\n"
                          "VERSION_ID=7\n")
        done = self.check("--os-release", str(path))
        self.assertEqual((0, "compatible\n"), (done.returncode, done.stdout), done.stderr)
        self.assertLess(len(done.stderr), 2000)


class TestHostileElements(HostileTestCase):

    def element(self, name: str = "el") -> Path:
        elements = self.top / "elements"
        self.write(elements / name / "README.rst", f"{name}\n{'=' * len(name)}\n")
        return elements / name

    def test_element_deps_link_to_dev_zero(self) -> None:
        elem = self.element()
        os.symlink("/dev/zero", elem / "element-deps")
        self.assertOneLineError(
            self.run_cmd("sysext-element-info", "--element-path", str(elem.parent), "el"), 10,
            f"{elem}/element-deps: not a regular file (character device)")

    def test_element_deps_fifo(self) -> None:
        elem = self.element()
        os.mkfifo(elem / "element-deps")
        self.assertOneLineError(
            self.run_cmd("sysext-element-info", "--element-path", str(elem.parent), "el"), 10,
            "element-deps: not a regular file (fifo)")

    def test_lint_non_utf8_names_and_fifos(self) -> None:
        elem = self.element()
        hooks = os.fsencode(elem / "install.d")
        os.mkdir(hooks)
        with open(hooks + b"/10-bad\xff", "wb") as f:
            f.write(b"#!/bin/bash\nset -eu -o pipefail\nif then \xff\n")
        os.chmod(hooks + b"/10-bad\xff", 0o755)
        os.mkfifo(elem / "units")
        done = self.run_cmd("sysext-element-lint", str(elem))
        self.assertOneLineError(done, 17, "error(s)")
        self.assertIn("SB004 hook name '10-bad\\udcff' is never run", done.stdout)
        self.assertIn(":3: error: SB023 bash -n: syntax error", done.stdout)
        self.assertIn("units: error: SB024 not a regular file (fifo)", done.stdout)
