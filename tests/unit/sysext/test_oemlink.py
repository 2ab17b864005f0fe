"""The OEM activation helper's script, run against a fake OEM tree."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import fixtures

from sysext_builder.sysext import oemlink
from tests.base import TestCase


class TestOemLink(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.oem, self.ext = self.dir / "oem", self.dir / "extensions"
        (self.oem / "sysext").mkdir(parents=True)
        (self.oem / "oem-release").write_text('ID="azure"\nVERSION_ID=1.0\n')

    def run_helper(self) -> str:
        """The unit's ExecStart= with systemd's unquoting, on our directories."""
        line = next(ln for ln in oemlink.helper_unit().splitlines()
                    if ln.startswith("ExecStart="))
        argv = shlex.split(line.removeprefix("ExecStart=").replace("%%", "%"))
        self.assertEqual(["/bin/sh", "-c"], argv[:2])
        self.assertEqual(["sh", "/oem", "/etc/extensions"], argv[3:])
        proc = subprocess.run(["/bin/sh", "-c", argv[2], "sh", str(self.oem), str(self.ext)],
                              capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    def add(self, *names: str) -> None:
        for name in names:
            (self.oem / "sysext" / name).write_text(name)

    def test_not_active_without_the_flag(self) -> None:
        self.add("oem-azure-1.0.raw")
        self.assertIn("oem-azure is not active", self.run_helper())
        self.assertFalse(os.path.lexists(self.ext / "oem-azure.raw"))

    def test_links_the_newest_version(self) -> None:
        self.add("active-oem-azure", "oem-azure-1.9.raw", "oem-azure-1.10.raw",
                 "oem-qemu-9.raw")
        self.assertIn("linked", self.run_helper())
        self.assertEqual(str(self.oem / "sysext/oem-azure-1.10.raw"),
                         os.readlink(self.ext / "oem-azure.raw"))
        self.assertIn("->", self.run_helper())  # again: left as it is
        self.add("oem-azure-2.0.raw")
        self.run_helper()
        self.assertEqual(str(self.oem / "sysext/oem-azure-2.0.raw"),
                         os.readlink(self.ext / "oem-azure.raw"))

    def test_nothing_to_link(self) -> None:
        self.add("active-oem-azure")
        self.assertIn("no ", self.run_helper())
        (self.oem / "oem-release").write_text("NAME=x\n")
        self.assertIn("no ID=", self.run_helper())

    def test_unit(self) -> None:
        text = oemlink.helper_unit()
        for line in ("RequiresMountsFor=/oem", "Before=systemd-sysext.service sysinit.target",
                     "ConditionPathExists=/oem/oem-release", "WantedBy=sysinit.target"):
            self.assertIn(line + "\n", text)
        self.assertNotIn("\\", text.split("ExecStart=", 1)[1].split("\n", 1)[0],
                         "systemd would unescape it before sh reads it")
