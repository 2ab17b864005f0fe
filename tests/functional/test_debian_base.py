"""The Debian base tree fixture the functional tests build on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import testtools

from tests.functional.debian_base import (
    RELEASE,
    REPO_ROOT,
    DebianBaseTree,
    base_tarball,
    mounts_below,
)


def read_os_release(root: Path) -> dict[str, str]:
    path = root / "etc/os-release"
    if path.is_symlink():
        # Debian's is ../usr/lib/os-release; an absolute link would read the host's.
        assert not os.readlink(path).startswith("/"), os.readlink(path)
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value.strip().strip('"')
    return values


class TestDebianBaseTree(testtools.TestCase):

    def test_tree_is_a_debian_with_python_and_apt(self) -> None:
        tree = self.useFixture(DebianBaseTree())
        os_release = read_os_release(tree.path)
        self.assertEqual("debian", os_release.get("ID"))
        if RELEASE not in ("sid", "unstable", "testing"):
            self.assertEqual(RELEASE, os_release.get("VERSION_CODENAME"))
        for tool in ("usr/bin/python3", "usr/bin/apt-get"):
            # python3 is a relative symlink (python3.11): resolve it within the tree
            self.assertTrue((tree.path / tool).exists(), tool)
            self.assertTrue(os.access(tree.path / tool, os.X_OK), tool)
        self.assertEqual(0o755, (tree.path).stat().st_mode & 0o7777)
        self.assertEqual(0, (tree.path / "usr").stat().st_uid)

    def test_each_fixture_is_a_fresh_copy(self) -> None:
        first = self.useFixture(DebianBaseTree())
        (first.path / "usr/bin/apt-get").unlink()
        second = self.useFixture(DebianBaseTree())
        self.assertNotEqual(first.path, second.path)
        self.assertTrue((second.path / "usr/bin/apt-get").exists())

    def test_cleanup_removes_the_tree(self) -> None:
        tree = DebianBaseTree()
        tree.setUp()
        path = tree.path
        # A read-only corner must not stop the removal.
        locked = path / "srv/locked"
        locked.mkdir()
        (locked / "file").write_text("x")
        (locked / "file").chmod(0o400)
        locked.chmod(0o500)
        tree.cleanUp()
        self.assertFalse(os.path.lexists(path))
        self.assertTrue(base_tarball().is_file(), "the cached tarball stays")

    def test_cleanup_refuses_while_something_is_mounted_below(self) -> None:
        base_tarball()  # skip here, not in the child, when there is no base
        # Mount in a private namespace of a child process, so nothing can leak here.
        script = textwrap.dedent("""
            import subprocess
            from tests.functional.debian_base import DebianBaseTree
            tree = DebianBaseTree()
            tree.setUp()
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tree.path / "mnt")],
                           check=True)
            try:
                tree.cleanUp()
            except Exception as exc:
                print("REFUSED", exc)
            else:
                print("REMOVED")
            print("STILL-THERE" if (tree.path / "usr/bin").is_dir() else "GONE")
            subprocess.run(["umount", str(tree.path / "mnt")], check=True)
            from tests.functional.debian_base import remove_tree
            remove_tree(tree.path)
            print("CLEAN" if not tree.path.exists() else "LEFT")
        """)
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--",
             sys.executable, "-c", script],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        self.assertEqual(0, proc.returncode, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertTrue(lines[0].startswith("REFUSED refusing to remove"), proc.stdout)
        self.assertIn("/mnt", lines[0])
        self.assertEqual(["STILL-THERE", "CLEAN"], lines[1:])


class TestMountsBelow(testtools.TestCase):

    MOUNTINFO = textwrap.dedent("""\
        22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
        40 22 0:5 / /tmp/tree/proc rw - proc proc rw
        41 22 254:0 /etc/resolv.conf /tmp/tree/etc/resolv.conf rw - ext4 /dev/vda rw
        42 22 0:40 / /tmp/tree\\040two/dev rw - tmpfs tmpfs rw
        43 22 0:41 / /tmp/treehouse rw - tmpfs tmpfs rw
        """)

    def test_finds_mounts_at_and_below_only(self) -> None:
        self.assertEqual(["/tmp/tree/proc", "/tmp/tree/etc/resolv.conf"],
                         mounts_below("/tmp/tree", self.MOUNTINFO))
        self.assertEqual(["/tmp/tree two/dev"], mounts_below("/tmp/tree two", self.MOUNTINFO))
        self.assertEqual([], mounts_below("/tmp/elsewhere", self.MOUNTINFO))
