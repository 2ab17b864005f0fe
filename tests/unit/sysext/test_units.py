"""Unit declarations: the units file format, .wants links, Upholds= drop-ins."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder.errors import ElementFormatError, TreeRuleError
from sysext_builder.sysext.units import UnitDecl, apply_units, parse_units, ships_units
from tests.base import TestCase

UNITS = "usr/lib/systemd/system"
WAAGENT = """[Unit]
Description=Azure Linux Agent

[Service]
ExecStart=/usr/sbin/waagent -daemon

[Install]
WantedBy=multi-user.target
"""


def decl(verb: str, unit: str, target: str | None = None) -> UnitDecl:
    return UnitDecl(verb=verb, unit=unit, target=target, source="units:1")


class TestParseUnits(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def write(self, text: str) -> Path:
        path = self.dir / "units"
        path.write_text(text, encoding="utf-8")
        return path

    def test_declarations_comments_and_blank_lines(self) -> None:
        path = self.write("# units of waagent\n\nenable waagent.service\n"
                          "  upholds hv-kvp.service multi-user.target  # keep it running\n"
                          "enable glean@eth0.service\n")
        self.assertEqual(
            [UnitDecl("enable", "waagent.service", None, f"{path}:3"),
             UnitDecl("upholds", "hv-kvp.service", "multi-user.target", f"{path}:4"),
             UnitDecl("enable", "glean@eth0.service", None, f"{path}:5")],
            parse_units(path))

    def test_errors_name_file_and_line(self) -> None:
        for text, needle in (("start foo.service\n", "expected 'enable UNIT [TARGET]'"),
                             ("enable\n", "expected"),
                             ("enable a.service b.target c\n", "expected"),
                             ("enable waagent\n", "'waagent' is not a unit name"),
                             ("enable a.service multi user\n", "expected"),
                             ("upholds a.service bad/target.target\n", "not a unit name")):
            path = self.write("# first\n" + text)
            err = self.assertRaises(ElementFormatError, parse_units, path)
            self.assertIn(f"{path}:2:", str(err))
            self.assertIn(needle, str(err))

    def test_unreadable_file(self) -> None:
        err = self.assertRaises(ElementFormatError, parse_units, self.dir / "missing")
        self.assertIn("missing", str(err))


class TestApplyUnits(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        self.logger = self.useFixture(fixtures.FakeLogger(level=20))

    def unit(self, name: str, text: str) -> None:
        path = self.root / UNITS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def link(self, rel: str) -> str:
        return os.readlink(self.root / UNITS / rel)

    def test_enable_uses_wanted_by(self) -> None:
        self.unit("waagent.service", WAAGENT)
        created = apply_units(self.root, [decl("enable", "waagent.service")], "oem-azure")
        self.assertEqual([f"{UNITS}/multi-user.target.wants/waagent.service"], created)
        self.assertEqual("../waagent.service", self.link("multi-user.target.wants/waagent.service"))
        self.assertTrue((self.root / created[0]).is_file())  # resolves inside the tree
        self.assertIn(f"created {UNITS}/multi-user.target.wants/waagent.service",
                      self.logger.output)

    def test_explicit_target_wins(self) -> None:
        self.unit("waagent.service", WAAGENT)
        created = apply_units(self.root, [decl("enable", "waagent.service", "network.target")],
                              "x")
        self.assertEqual([f"{UNITS}/network.target.wants/waagent.service"], created)

    def test_every_wanted_by_and_reset(self) -> None:
        self.unit("a.service", "[Install]\nWantedBy=old.target\nWantedBy=\n"
                               "WantedBy=multi-user.target \\\n  sockets.target\n"
                               "WantedBy=multi-user.target\n[Service]\nWantedBy=no.target\n")
        created = apply_units(self.root, [decl("enable", "a.service")], "x")
        self.assertEqual([f"{UNITS}/multi-user.target.wants/a.service",
                          f"{UNITS}/sockets.target.wants/a.service"], created)

    def test_upholds_writes_link_and_drop_in(self) -> None:
        self.unit("waagent.service", WAAGENT)
        created = apply_units(self.root, [decl("upholds", "waagent.service")], "oem-azure")
        dropin = f"{UNITS}/multi-user.target.d/10-oem-azure-waagent.conf"
        self.assertEqual([f"{UNITS}/multi-user.target.wants/waagent.service", dropin], created)
        self.assertEqual("[Unit]\nUpholds=waagent.service\n",
                         (self.root / dropin).read_text(encoding="utf-8"))
        self.assertEqual(0o644, (self.root / dropin).stat().st_mode & 0o777)

    def test_instance_links_to_the_template(self) -> None:
        self.unit("glean@.service", "[Install]\nWantedBy=network.target\n")
        created = apply_units(self.root, [decl("upholds", "glean@eth0.service")], "glean")
        self.assertEqual([f"{UNITS}/network.target.wants/glean@eth0.service",
                          f"{UNITS}/network.target.d/10-glean-glean@eth0.conf"], created)
        self.assertEqual("../glean@.service", self.link("network.target.wants/glean@eth0.service"))
        self.assertIn("Upholds=glean@eth0.service",
                      (self.root / created[1]).read_text(encoding="utf-8"))

    def test_bare_template_uses_default_instance(self) -> None:
        self.unit("getty@.service", "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n")
        created = apply_units(self.root, [decl("enable", "getty@.service")], "x")
        self.assertEqual([f"{UNITS}/getty.target.wants/getty@tty1.service"], created)
        self.assertEqual("../getty@.service", self.link("getty.target.wants/getty@tty1.service"))

    def test_bare_template_without_default_instance(self) -> None:
        self.unit("glean@.service", "[Install]\nWantedBy=network.target\n")
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("enable", "glean@.service")], "x")
        self.assertIn("units:1: template glean@.service has no DefaultInstance=", str(err))
        self.assertIn("glean@NAME.service", err.hint or "")

    def test_missing_unit_file_names_the_declaration(self) -> None:
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("enable", "waagent.service")], "x")
        self.assertIn("units:1: unit file for waagent.service is not in the staging tree",
                      str(err))
        self.assertIn(f"/{UNITS}/waagent.service", err.hint or "")

    def test_no_target_known(self) -> None:
        self.unit("oneshot.service", "[Service]\nType=oneshot\n")
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("upholds", "oneshot.service")], "x")
        self.assertIn("no [Install] WantedBy= and no target", str(err))
        self.assertIn("upholds oneshot.service TARGET", err.hint or "")

    def test_specifier_targets_are_refused(self) -> None:
        self.unit("a@.service", "[Install]\nWantedBy=dev-%i.device\n")
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("enable", "a@x.service")], "x")
        self.assertIn("dev-%i.device", str(err))

    def test_applying_twice_is_idempotent(self) -> None:
        self.unit("waagent.service", WAAGENT)
        decls = [decl("upholds", "waagent.service"), decl("enable", "waagent.service")]
        self.assertEqual(2, len(apply_units(self.root, decls, "x")))
        self.assertEqual([], apply_units(self.root, decls, "x"))

    def test_conflicting_link_is_an_error(self) -> None:
        self.unit("waagent.service", WAAGENT)
        wants = self.root / UNITS / "multi-user.target.wants"
        wants.mkdir()
        os.symlink("/dev/null", wants / "waagent.service")
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("enable", "waagent.service")], "x")
        self.assertIn("multi-user.target.wants/waagent.service already exists", str(err))

    def test_alias_symlink_is_read_inside_the_root(self) -> None:
        self.unit("real.service", "[Install]\nWantedBy=multi-user.target\n")
        os.symlink(f"/{UNITS}/real.service", self.root / UNITS / "alias.service")
        created = apply_units(self.root, [decl("enable", "alias.service")], "x")
        self.assertEqual("../alias.service", self.link("multi-user.target.wants/alias.service"))
        self.assertEqual(1, len(created))

    def test_symlinked_wants_dir_is_refused(self) -> None:
        self.unit("waagent.service", WAAGENT)
        outside = self.useFixture(fixtures.TempDir()).path
        os.symlink(outside, self.root / UNITS / "multi-user.target.wants")
        self.assertRaises(TreeRuleError, apply_units, self.root,
                          [decl("enable", "waagent.service")], "x")
        self.assertEqual([], os.listdir(outside))


class TestShipsUnits(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)

    def put(self, rel: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def test_empty_tree_ships_none(self) -> None:
        self.assertFalse(ships_units(self.root))
        self.put("usr/bin/tool")
        self.put(f"{UNITS}/README")
        self.assertFalse(ships_units(self.root))

    def test_system_and_user_units_and_drop_ins_count(self) -> None:
        for rel in (f"{UNITS}/waagent.service", "usr/lib/systemd/user/agent.socket",
                    f"{UNITS}/multi-user.target.d/10-x.conf", f"{UNITS}/foo.timer"):
            self.root = Path(self.useFixture(fixtures.TempDir()).path)
            self.put(rel)
            self.assertTrue(ships_units(self.root), rel)
