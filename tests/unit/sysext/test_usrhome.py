"""/etc entries with a /usr home: enablement links and twin directories move there."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.sysext import usrhome


class TestShip(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        self.etc = self.root / "etc/systemd/system"

    def link(self, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    def unit(self, tree: Path, name: str) -> None:
        path = tree / "usr/lib/systemd/system" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[Unit]\n")

    def test_systemctl_enable_links_become_shipped_wants(self) -> None:
        base = Path(self.useFixture(fixtures.TempDir()).path)
        self.unit(self.root, "growroot.service")
        self.unit(self.root, "getty@.service")
        self.unit(base, "ssh.service")  # a unit of the base may be enabled too
        self.link("etc/systemd/system/multi-user.target.wants/growroot.service",
                  "/lib/systemd/system/growroot.service")
        self.link("etc/systemd/system/getty.target.wants/getty@tty1.service",
                  "/usr/lib/systemd/system/getty@.service")
        self.link("etc/systemd/system/sshd.service", "/lib/systemd/system/ssh.service")
        moved = usrhome.ship(self.root, base)
        unit_dir = self.root / "usr/lib/systemd/system"
        self.assertEqual("../growroot.service",
                         os.readlink(unit_dir / "multi-user.target.wants/growroot.service"))
        self.assertEqual("../getty@.service",
                         os.readlink(unit_dir / "getty.target.wants/getty@tty1.service"))
        self.assertEqual("ssh.service", os.readlink(unit_dir / "sshd.service"))
        self.assertEqual(3, len(moved))
        self.assertFalse((self.root / "etc/systemd").exists(), "the emptied dirs are removed")

    def test_masks_unit_files_taken_names_and_missing_units_stay_for_the_lowering(self) -> None:
        self.link("etc/systemd/system/foo.service", "/dev/null")
        (self.etc / "bar.service").write_text("[Service]\n")
        self.unit(self.root, "a.service")
        self.link("etc/systemd/system/multi-user.target.wants/a.service", "/lib/x/a.service")
        self.link("usr/lib/systemd/system/multi-user.target.wants/a.service", "../other")
        # a later hook removed the unit: a shipped link would dangle
        self.link("etc/systemd/system/multi-user.target.wants/gone.service",
                  "/lib/systemd/system/gone.service")
        self.assertEqual([], usrhome.ship(self.root))
        self.assertTrue((self.etc / "multi-user.target.wants/gone.service").is_symlink())
        self.assertEqual("/dev/null", os.readlink(self.etc / "foo.service"))
        self.assertTrue((self.etc / "bar.service").is_file())
        self.assertEqual("/lib/x/a.service",
                         os.readlink(self.etc / "multi-user.target.wants/a.service"))

    def test_twin_directories(self) -> None:
        for rel in ("etc/modprobe.d/blacklist.conf", "etc/systemd/journald.conf.d/c.conf",
                    "etc/udev/rules.d/99-x.rules", "etc/ssh/sshd_config"):
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(rel)
        self.link("etc/modprobe.d/masked.conf", "/dev/null")
        usrhome.ship(self.root)
        for rel in ("usr/lib/modprobe.d/blacklist.conf", "usr/lib/systemd/journald.conf.d/c.conf",
                    "usr/lib/udev/rules.d/99-x.rules"):
            self.assertTrue((self.root / rel).is_file(), rel)
        self.assertFalse((self.root / "etc/udev").exists())
        self.assertTrue((self.root / "etc/ssh/sshd_config").is_file(), "no twin: lowered")
        self.assertTrue((self.root / "etc/modprobe.d/masked.conf").is_symlink())

    def test_a_symlinked_etc_directory_is_not_followed(self) -> None:
        outside = Path(self.useFixture(fixtures.TempDir()).path)
        (outside / "x.conf").write_text("host")
        (self.root / "etc").mkdir()
        (self.root / "etc/modprobe.d").symlink_to(outside)
        self.assertEqual([], usrhome.ship(self.root))
        self.assertTrue((outside / "x.conf").is_file())
