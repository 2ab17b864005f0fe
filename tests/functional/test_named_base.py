"""Named bases for real: mmdebstrap makes ``debian:bookworm`` (about 30 s) into a
temporary cache once for the module; a second open reuses it; a failing spec leaves
no cache entry.  Needs root, mmdebstrap and the Debian mirror."""

from __future__ import annotations

import glob
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.staging import base as staging_base
from sysext_builder.staging import debian
from tests.functional import base
from tests.functional.debian_base import remove_tree

_scratch: Path | None = None


def cache_dir() -> Path:
    """One cache for the module, so each base is made once."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="sysext-named-base-test-", dir="/var/tmp"))
    return _scratch / "bases"


def tearDownModule() -> None:  # noqa: N802 (unittest's name)
    if _scratch is not None:
        remove_tree(_scratch)


def mirror_problem() -> str | None:
    url = f"{debian.mirror_from()}/dists/bookworm/InRelease"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15).close()
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None


class TestNamedBase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        base.require_root("making a named base (mmdebstrap --mode=root)")
        base.require_tool("mmdebstrap", "mmdebstrap")
        problem = mirror_problem()
        base.require("network", problem is None, f"no Debian mirror: {problem}")
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))

    def test_default_base_is_systemd_without_python_or_openssl_and_is_reused(self) -> None:
        opened = staging_base.open_base("debian:12", cache_dir())
        tree = opened.path
        self.assertEqual("debian:bookworm", opened.source)
        self.assertEqual(cache_dir(), tree.parent)
        self.assertEqual(("debian", "12"), (opened.os_release["ID"],
                                            opened.os_release["VERSION_ID"]))
        if debian.host_architecture() == "amd64":
            self.assertEqual("x86-64", opened.architecture)
        self.assertTrue((tree / "usr/bin/systemctl").is_file())
        self.assertTrue((tree / "usr/sbin/init").is_symlink(), "systemd-sysv")
        installed = debian.installed_packages(tree)
        for package in ("systemd", "systemd-sysv", "udev"):
            self.assertIn(package, installed)
        for absent in ("python3", "openssl"):
            self.assertFalse(absent in installed, f"{absent} is installed")
            self.assertFalse(os.path.lexists(tree / "usr/bin" / absent), absent)
        self.assertGreaterEqual(debian.systemd_version(tree) or 0, 252)
        for unit, target in (("systemd-networkd.service", "multi-user.target"),
                             ("systemd-sysext.service", "sysinit.target")):
            self.assertTrue(os.path.lexists(tree / f"etc/systemd/system/{target}.wants/{unit}"),
                            f"{unit} is not enabled")
        # apt works in the chroot without an update: sources and lists are kept
        self.assertIn("bookworm", (tree / "etc/apt/sources.list").read_text())
        self.assertTrue(glob.glob(str(tree / "var/lib/apt/lists/*_Packages")))
        self.assertFalse(glob.glob(str(tree / "usr/share/man/man1/*")))
        self.assertTrue((tree / "usr/share/doc/systemd/copyright").is_file())
        self.assertEqual([], glob.glob(str(cache_dir() / ".*.tmp-*")))

        made = tree.stat().st_mtime_ns

        def no_mmdebstrap(*args: object, **kwargs: object) -> None:
            raise AssertionError("mmdebstrap ran again for a cached base")

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.stream", no_mmdebstrap))
        again = staging_base.open_base("debian:bookworm", cache_dir())
        self.assertEqual(tree, again.path)
        self.assertEqual(made, tree.stat().st_mtime_ns)
        self.assertIn(f"base debian:bookworm: reused {tree}", self.log.output)

    def test_failed_mmdebstrap_leaves_no_entry_and_one_line(self) -> None:
        named = debian.parse("debian:bookworm+no-such-package-xyz")
        assert named is not None
        err = self.assertRaises(InstallError, debian.cached_tree, named, cache_dir())
        self.assertNotIn("\n", err.message)
        self.assertTrue(err.message.startswith(
            "--base debian:bookworm+no-such-package-xyz: mmdebstrap failed with exit status"),
            err.message)
        self.assertIn("no-such-package-xyz", err.message.split(": mmdebstrap", 1)[1])
        entry = named.entry_name(debian.host_architecture(), debian.mirror_from())
        self.assertFalse(os.path.lexists(cache_dir() / entry))
        self.assertEqual([], glob.glob(str(cache_dir() / f".{entry}.tmp-*")))
        log = cache_dir() / f"{entry}.log"
        self.assertEqual(f"full log: {log}", err.hint)
        self.assertIn("no-such-package-xyz", log.read_text())
