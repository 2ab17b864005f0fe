"""Run-once-per-version units: ``once UNIT [TARGET]`` in a units file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import fixtures

from sysext_builder.errors import ElementFormatError, TreeRuleError
from sysext_builder.sysext import once, tree
from sysext_builder.sysext.units import UnitDecl, apply_units, parse_units, ships_units
from tests.base import PACKAGE_DIR, TestCase, require

UNITS = "usr/lib/systemd/system"
MIGRATE = """[Unit]
Description=Migrate the settings of an older version

[Service]
Type=oneshot
ExecStart=/usr/libexec/migrate

[Install]
WantedBy=multi-user.target
"""
FIELDS = {"ID": "flatcar", "VERSION_ID": "3975.2.0", "ARCHITECTURE": "x86-64"}
DROPIN = f"{UNITS}/migrate.service.d/10-oem-azure-once.conf"
MARKER = "/var/lib/oem-azure/once/migrate.service-3975.2.0"


def decl(unit: str, target: str | None = None) -> UnitDecl:
    return UnitDecl(verb="once", unit=unit, target=target, source="units:3")


class TestParse(TestCase):

    def test_once_is_a_verb_with_an_optional_target(self) -> None:
        path = Path(self.useFixture(fixtures.TempDir()).path) / "units"
        path.write_text("once migrate.service\nonce tidy.service basic.target  # early\n")
        self.assertEqual([UnitDecl("once", "migrate.service", None, f"{path}:1"),
                          UnitDecl("once", "tidy.service", "basic.target", f"{path}:2")],
                         parse_units(path))
        path.write_text("once\n")
        err = self.assertRaises(ElementFormatError, parse_units, path)
        self.assertIn("'once UNIT [TARGET]'", err.message)


class TestApply(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.FakeLogger(level=20))
        self.unit("migrate.service", MIGRATE)

    def unit(self, name: str, text: str) -> None:
        path = self.root / UNITS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def apply(self, *decls: UnitDecl, fields: dict[str, str] | None = None,
              name: str = "oem-azure") -> list[str]:
        return apply_units(self.root, list(decls), name,
                           fields=FIELDS if fields is None else fields)

    def test_enabled_like_enable_with_the_condition_and_the_marker(self) -> None:
        created = self.apply(decl("migrate.service"))
        self.assertEqual([f"{UNITS}/multi-user.target.wants/migrate.service", DROPIN], created)
        self.assertEqual("../migrate.service",
                         os.readlink(self.root / UNITS / "multi-user.target.wants/migrate.service"))
        self.assertEqual(
            "# Written by sysext-builder: run migrate.service once per version of the "
            "extension oem-azure (this is 3975.2.0)\n"
            "[Unit]\n"
            f"ConditionPathExists=!{MARKER}\n"
            "\n"
            "[Service]\n"
            "ExecStartPost=+/bin/sh -c 'mkdir -p /var/lib/oem-azure/once && touch "
            f"{MARKER}'\n", (self.root / DROPIN).read_text())
        self.assertEqual(0o644, (self.root / DROPIN).stat().st_mode & 0o777)
        self.assertTrue(ships_units(self.root))
        tree.validate(self.root)  # the drop-in passes the tree rules

    def test_explicit_target(self) -> None:
        created = self.apply(decl("migrate.service", "basic.target"))
        self.assertEqual([f"{UNITS}/basic.target.wants/migrate.service", DROPIN], created)

    def test_the_extensions_own_version_wins(self) -> None:
        self.apply(decl("migrate.service"), fields={**FIELDS, "SYSEXT_VERSION_ID": "1.4"})
        self.assertIn("ConditionPathExists=!/var/lib/oem-azure/once/migrate.service-1.4\n",
                      (self.root / DROPIN).read_text())

    def test_another_version_names_another_marker(self) -> None:
        self.apply(decl("migrate.service"))
        first = (self.root / DROPIN).read_text()
        shutil.rmtree(self.root / UNITS / "migrate.service.d")
        self.apply(decl("migrate.service"), fields={**FIELDS, "VERSION_ID": "3975.2.1"})
        second = (self.root / DROPIN).read_text()
        self.assertNotEqual(first, second)
        self.assertIn("migrate.service-3975.2.1'", second)

    def test_a_level_only_image_has_no_version(self) -> None:
        err = self.assertRaises(TreeRuleError, self.apply, decl("migrate.service"),
                                fields={"ID": "flatcar", "SYSEXT_LEVEL": "1.0"})
        self.assertEqual("units:3: once migrate.service: the extension has no version "
                         "(neither SYSEXT_VERSION_ID nor VERSION_ID in extension-release)",
                         err.message)
        self.assertIn("SYSEXT_RELEASE_SYSEXT_VERSION_ID", err.hint or "")
        self.assertFalse(os.path.lexists(self.root / UNITS / "multi-user.target.wants"),
                         "nothing is created before the checks")

    def test_without_the_release_fields(self) -> None:
        err = self.assertRaises(TreeRuleError, apply_units, self.root,
                                [decl("migrate.service")], "oem-azure")
        self.assertIn("the extension's version is unknown here", err.message)

    def test_only_services(self) -> None:
        self.unit("tidy.timer", "[Install]\nWantedBy=timers.target\n")
        err = self.assertRaises(TreeRuleError, self.apply, decl("tidy.timer"))
        self.assertEqual("units:3: once tidy.timer: only a .service can run once", err.message)

    def test_names_and_versions_that_cannot_name_a_marker(self) -> None:
        err = self.assertRaises(TreeRuleError, self.apply, decl("migrate.service"),
                                fields={**FIELDS, "SYSEXT_VERSION_ID": "1 2"})
        self.assertIn("version '1 2' cannot name a marker file", err.message)
        self.unit("a\\x2db.service", MIGRATE)
        err = self.assertRaises(TreeRuleError, self.apply, decl("a\\x2db.service"))
        self.assertIn("the unit name cannot name a marker file", err.message)

    def test_a_template_runs_once_per_instance(self) -> None:
        self.unit("resize@.service", "[Service]\nType=oneshot\n[Install]\n"
                                     "WantedBy=multi-user.target\nDefaultInstance=vda\n")
        created = self.apply(decl("resize@.service"))
        self.assertEqual([f"{UNITS}/multi-user.target.wants/resize@vda.service",
                          f"{UNITS}/resize@vda.service.d/10-oem-azure-once.conf"], created)
        self.assertIn("/var/lib/oem-azure/once/resize@vda.service-3975.2.0",
                      (self.root / created[1]).read_text())

    def test_declared_twice_is_idempotent(self) -> None:
        created = self.apply(decl("migrate.service"), decl("migrate.service"))
        self.assertEqual(2, len(created))

    def test_systemd_reads_the_drop_in_without_complaint(self) -> None:
        analyze = shutil.which("systemd-analyze")
        require("tools", analyze is not None, "systemd-analyze is not installed")
        assert analyze is not None
        (self.root / "usr/libexec").mkdir(parents=True)
        (self.root / "usr/libexec/migrate").write_text("#!/bin/sh\n")
        (self.root / "usr/libexec/migrate").chmod(0o755)
        self.unit("migrate.service", MIGRATE.replace("/usr/libexec/migrate", "/bin/true"))
        self.apply(decl("migrate.service"))
        env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{self.root / UNITS}:",
               "SYSTEMD_LOG_LEVEL": "notice"}
        proc = subprocess.run([analyze, "verify", "migrate.service"], env=env,
                              capture_output=True, text=True, check=False)
        self.assertEqual("", proc.stderr.replace(str(self.root), "ROOT"),
                         "systemd-analyze verify warns about the drop-in")


class TestShellLibrary(TestCase):

    def test_sysext_once_unit_appends_a_declaration(self) -> None:
        units = Path(self.useFixture(fixtures.TempDir()).path) / "units"
        lib = PACKAGE_DIR / "lib" / "common-functions.sh"
        script = (f"set -eu -o pipefail; source {lib}; sysext_once_unit migrate.service; "
                  "sysext_once_unit tidy.service basic.target")
        subprocess.run(["bash", "-c", script], env={"SYSEXT_UNITS_FILE": str(units),
                                                    "PATH": os.environ["PATH"]}, check=True)
        self.assertEqual("once migrate.service\nonce tidy.service basic.target\n",
                         units.read_text())
        self.assertEqual([UnitDecl("once", "migrate.service", None, f"{units}:1"),
                          UnitDecl("once", "tidy.service", "basic.target", f"{units}:2")],
                         parse_units(units))
        proc = subprocess.run(["bash", "-c", f"source {lib}; sysext_once_unit"],
                              env={"SYSEXT_UNITS_FILE": str(units), "PATH": os.environ["PATH"]},
                              capture_output=True, text=True, check=False)
        self.assertEqual(1, proc.returncode)
        self.assertIn("usage: sysext_once_unit UNIT [TARGET]", proc.stderr)


class TestMarker(TestCase):

    def test_marker_and_drop_in_names(self) -> None:
        self.assertEqual(MARKER, once.marker("oem-azure", "migrate.service", "3975.2.0"))
        self.assertEqual("migrate.service.d/10-oem-azure-once.conf",
                         once.dropin_name("oem-azure", "migrate.service"))
        self.assertEqual(("SYSEXT_VERSION_ID", "VERSION_ID"), once.VERSION_FIELDS)
