"""Issue 12: what sysext assembly writes into and reads from the staging tree stays inside it."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import tree, units
from sysext_builder.sysext.units import UnitDecl, apply_units
from tests.base import TestCase

UNITS = "usr/lib/systemd/system"
WAAGENT = "[Install]\nWantedBy=multi-user.target\n"


class TestContainedWrites(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "root"
        self.outside = Path(self.useFixture(fixtures.TempDir()).path) / "victim"
        self.outside.write_text("untouched", encoding="utf-8")
        self.root.mkdir()

    def test_write_in_refuses_a_planted_symlink(self) -> None:
        (self.root / "usr/lib/tmpfiles.d").mkdir(parents=True)
        os.symlink(self.outside, self.root / "usr/lib/tmpfiles.d/ext-etc.conf")
        err = self.assertRaises(TreeRuleError, tree.write_in, self.root,
                                "usr/lib/tmpfiles.d/ext-etc.conf", "C /etc/x\n", "lowering")
        self.assertIn("lowering: usr/lib/tmpfiles.d/ext-etc.conf", str(err))
        self.assertEqual("untouched", self.outside.read_text(encoding="utf-8"))

    def test_write_in_refuses_a_dangling_symlink(self) -> None:
        os.symlink(self.root.parent / "new", self.root / "f")
        self.assertRaises(TreeRuleError, tree.write_in, self.root, "f", "x", "w")
        self.assertFalse(os.path.lexists(self.root.parent / "new"))

    def test_conf_written_through_no_link(self) -> None:
        # the lowering's own write: a link raced in after the existence check is refused
        (self.root / "usr/lib/tmpfiles.d").mkdir(parents=True)
        os.symlink(self.outside, self.root / "usr/lib/tmpfiles.d/x.conf")
        self.assertRaises(TreeRuleError, tree._write_conf, self.root,
                          "usr/lib/tmpfiles.d/x.conf", "# h", [])
        self.assertEqual("untouched", self.outside.read_text(encoding="utf-8"))

    def test_units_place_refuses_a_symlink_to_outside(self) -> None:
        (self.root / UNITS / "multi-user.target.d").mkdir(parents=True)
        os.symlink(self.outside, self.root / UNITS / "multi-user.target.d/x.conf")
        err = self.assertRaises(TreeRuleError, units._place, self.root,
                                f"{UNITS}/multi-user.target.d/x.conf", text="[Unit]\n",
                                source="units:3")
        self.assertIn("units:3", str(err))
        self.assertEqual("untouched", self.outside.read_text(encoding="utf-8"))

    def test_units_place_writes_a_regular_0644_file(self) -> None:
        self.assertTrue(units._place(self.root, f"{UNITS}/a.d/x.conf", text="[Unit]\n",
                                     source="units:1"))
        path = self.root / UNITS / "a.d/x.conf"
        self.assertEqual("[Unit]\n", path.read_text(encoding="utf-8"))
        self.assertEqual(0o644, path.stat().st_mode & 0o777)


class TestBoundedUnitReads(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        (self.root / UNITS).mkdir(parents=True)

    def enable(self) -> TreeRuleError:
        decl = UnitDecl(verb="enable", unit="a.service", target=None, source="units:1")
        return self.assertRaises(TreeRuleError, apply_units, self.root, [decl], "x")

    def test_fifo_unit_file_is_an_error_not_a_hang(self) -> None:
        os.mkfifo(self.root / UNITS / "a.service")
        err = self.enable()
        self.assertIn("units:1", str(err))
        self.assertIn("a.service", str(err))
        self.assertIn("fifo", str(err))
        self.assertNotIn("\n", str(err))

    def test_link_to_dev_zero_is_an_error(self) -> None:
        os.symlink("/dev/zero", self.root / UNITS / "a.service")
        self.assertIn("a.service", str(self.enable()))

    def test_huge_unit_file_is_refused(self) -> None:
        with open(self.root / UNITS / "a.service", "wb") as f:
            f.truncate(units.MAX_UNIT_BYTES + 1)
        self.assertIn("a.service", str(self.enable()))

    def test_absolute_link_resolves_inside_the_tree(self) -> None:
        (self.root / "usr/lib/real").mkdir(parents=True)
        (self.root / "usr/lib/real/a.service").write_text(WAAGENT, encoding="utf-8")
        os.symlink("/usr/lib/real/a.service", self.root / UNITS / "a.service")
        decl = UnitDecl(verb="enable", unit="a.service", target=None, source="units:1")
        self.assertEqual([f"{UNITS}/multi-user.target.wants/a.service"],
                         apply_units(self.root, [decl], "x"))
