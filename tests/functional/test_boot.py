"""The flagship extension booted for real: ``azure-oem simple-init`` built on a
named Debian base (no python3, no openssl) and booted in qemu with
``sysext-test-elements --boot azure-oem/boot``: on Debian 13 (systemd 257) with
the image alone, on Debian 12 (systemd 252) with the host helper.

Each run makes or reuses ``debian:RELEASE`` and ``debian:RELEASE/vm`` in the
default cache directory (so a second CI run on the machine reuses them), builds
the image and boots it (1-3 minutes under TCG).  Needs root, mmdebstrap,
qemu-system-x86_64, mkfs.ext4 and the Debian mirror and PyPI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import testtools

from sysext_builder import paths
from tests.base import require
from tests.functional import base
from tests.functional.debian_base import remove_tree
from tests.functional.test_named_base import mirror_problem

#: every boot is bounded twice: by the VM timeout and by the test's own
BOOT_TIMEOUT_S = 600


def cache() -> Path:
    return Path(os.environ.get("SYSEXT_TEST_CACHE") or paths.user_cache_dir())


class BootCase(testtools.TestCase):
    release = ""
    systemd = ""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("booting a VM from a named base")
        for tool, package in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"),
                              ("qemu-system-x86_64", "qemu-system-x86"),
                              ("mksquashfs", "squashfs-tools"), ("xorriso", "xorriso")):
            base.require_tool(tool, package)
        problem = mirror_problem()
        require("network", problem is None, f"no Debian mirror: {problem}")

    def boot(self, case: str = "azure-oem/boot", *extra: str,
             env: dict[str, str] | None = None) -> str:
        """Boot the test ``case`` (``extra``: more sysext-test-elements options)."""
        work = Path(tempfile.mkdtemp(prefix="sysext-boot-test-", dir="/var/tmp"))
        self.addCleanup(remove_tree, work)
        proc = base.run("sysext-test-elements", "--base", f"debian:{self.release}", "--boot",
                        "--boot-timeout", str(BOOT_TIMEOUT_S), "--cache-dir", str(cache()),
                        "--workdir", str(work), *extra, case, env=env,
                        timeout=BOOT_TIMEOUT_S + 900)
        report = proc.stdout + proc.stderr[-4000:]
        self.assertEqual(0, proc.returncode, report)
        self.assertIn(f"PASS {case}", proc.stdout, report)
        self.assertIn(f"boot: debian:{self.release}/vm (systemd {self.systemd})", proc.stdout)
        return proc.stdout


class TestBootDebian13(BootCase):
    release, systemd = "trixie", "257"

    def test_the_image_alone_starts_its_units(self) -> None:
        output = self.boot()
        self.assertNotIn("host helper", output)


class TestBootDebian12(BootCase):
    release, systemd = "bookworm", "252"

    def test_with_the_host_helper(self) -> None:
        output = self.boot()
        self.assertIn("boot: systemd 252 needs the host helper sysext-builder-reload.service: "
                      "installed in the VM", output)
