"""What an image gets so that its units start when it is merged at boot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import fixtures

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import activation
from tests.base import TestCase

UNITS = "usr/lib/systemd/system"


class TestActivation(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        (self.root / UNITS).mkdir(parents=True)

    def link(self, target_dir: str, unit: str) -> None:
        (self.root / UNITS / target_dir).mkdir(exist_ok=True)
        os.symlink(f"../{unit}", self.root / UNITS / target_dir / unit)

    def test_nothing_enabled_nothing_written(self) -> None:
        (self.root / UNITS / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
        (self.root / UNITS / "multi-user.target.d").mkdir()
        self.assertEqual([], activation.write_activation(self.root, "img"))
        self.assertFalse((self.root / UNITS / "img-activate.service").exists())

    def test_targets_with_links(self) -> None:
        self.link("multi-user.target.wants", "a.service")
        self.link("sockets.target.wants", "a.socket")
        self.link("sysinit.target.upholds", "b.service")
        (self.root / UNITS / "timers.target.wants").mkdir()  # empty: not counted
        self.link("a.service.wants", "c.service")  # not a target
        self.assertEqual(["multi-user.target", "sockets.target", "sysinit.target"],
                         activation.enabling_targets(self.root, "img"))

    def test_unit_and_drop_in(self) -> None:
        self.link("multi-user.target.wants", "a.service")
        written = activation.write_activation(self.root, "img")
        self.assertEqual([f"{UNITS}/img-activate.service",
                          f"{UNITS}/sysinit.target.d/10-img-activate.conf"], written)
        self.assertIn("Upholds=img-activate.service\n",
                      (self.root / UNITS / "sysinit.target.d/10-img-activate.conf").read_text())
        unit = (self.root / UNITS / "img-activate.service").read_text()
        for line in ("DefaultDependencies=no", "After=systemd-sysext.service",
                     "RemainAfterExit=yes", "Type=oneshot"):
            self.assertIn(line + "\n", unit)
        exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart=-"))
        self.assertTrue(exec_start.endswith("' sh multi-user.target"), exec_start)

    def test_the_start_loop_starts_only_active_or_queued_targets(self) -> None:
        """Run the unit's shell loop against a fake systemctl."""
        self.link("multi-user.target.wants", "a.service")
        self.link("rescue.target.wants", "b.service")
        self.link("sysinit.target.wants", "c.service")
        activation.write_activation(self.root, "img")
        unit = (self.root / UNITS / "img-activate.service").read_text()
        command = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart=-"))
        argv = command.removeprefix("ExecStart=-").split(" ", 2)  # /bin/sh -c '...' sh T...
        bindir = self.root / "bin"
        bindir.mkdir()
        log = self.root / "calls"
        (bindir / "systemctl").write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {log}\n'
            'case "$*" in\n'
            '  "-q is-active sysinit.target") exit 0 ;;\n'
            '  "-q is-active "*) exit 3 ;;\n'
            '  "list-jobs --no-legend multi-user.target") echo "7 multi-user.target start"'
            ' ;;\n'
            "esac\nexit 0\n")
        (bindir / "systemctl").chmod(0o755)
        script_and_args = argv[2]
        subprocess.run(f"{argv[0]} {argv[1]} {script_and_args}", shell=True, check=True,
                       env={"PATH": f"{bindir}:/usr/bin:/bin"})
        starts = [ln for ln in log.read_text().splitlines() if ln.startswith("--no-block")]
        self.assertEqual(["--no-block start multi-user.target",
                          "--no-block start sysinit.target"], starts)

    def test_refuses_to_overwrite(self) -> None:
        self.link("multi-user.target.wants", "a.service")
        (self.root / UNITS / "img-activate.service").write_text("mine")
        exc = self.assertRaises(TreeRuleError, activation.write_activation, self.root, "img")
        self.assertIn("img-activate.service already exists", exc.message)


class TestUdev(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        self.rules = self.root / activation.UDEV_RULES_DIR
        self.rules.mkdir(parents=True)

    def test_no_rules_no_unit(self) -> None:
        self.assertEqual([], activation.write_udev_reload(self.root, "img"))

    def test_subsystems_of_the_rules(self) -> None:
        (self.rules / "60-a.rules").write_text('SUBSYSTEM=="net", ACTION=="add", RUN+="x"\n')
        (self.rules / "61-b.rules").write_text('SUBSYSTEM=="ptp|misc", TAG+="systemd"\n')
        self.assertEqual(["misc", "net", "ptp"], activation.udev_subsystems(self.root))
        written = activation.write_udev_reload(self.root, "img")
        unit = (self.root / written[0]).read_text()
        self.assertIn("ExecStart=udevadm control --reload\n", unit)
        self.assertIn("ExecStart=udevadm trigger --action=add --subsystem-match=misc "
                      "--subsystem-match=net --subsystem-match=ptp\n", unit)
        self.assertEqual("../img-udev.service", os.readlink(self.root / written[1]))
        self.assertTrue(written[1].endswith("sysinit.target.wants/img-udev.service"))

    def test_a_base_without_udev_gets_no_unit(self) -> None:
        (self.rules / "60-a.rules").write_text('SUBSYSTEM=="net", RUN+="x"\n')
        base = self.root / "base"
        (base / "usr/bin").mkdir(parents=True)
        self.assertEqual([], activation.write_udev_reload(self.root, "img", base))
        (base / "usr/bin/udevadm").write_text("")
        self.assertEqual(2, len(activation.write_udev_reload(self.root, "img", base)))

    def test_a_rule_without_subsystem_replays_everything(self) -> None:
        (self.rules / "60-a.rules").write_text('SUBSYSTEM=="net", RUN+="x"\n')
        (self.rules / "99-b.rules").write_text('ACTION=="add", ATTR{x}=="1", RUN+="y"\n')
        self.assertIsNone(activation.udev_subsystems(self.root))
        unit = (self.root / activation.write_udev_reload(self.root, "img")[0]).read_text()
        self.assertIn("ExecStart=udevadm trigger --action=add\n", unit)


class TestHelper(TestCase):

    def test_versions(self) -> None:
        self.assertTrue(activation.needs_host_helper(252))
        self.assertTrue(activation.needs_host_helper(254))
        self.assertFalse(activation.needs_host_helper(255))
        self.assertFalse(activation.needs_host_helper(None))
        self.assertIsNone(activation.advice("img", 257))
        self.assertIn("systemd 252 on the target does not reload after a merge",
                      activation.advice("img", 252) or "")
        self.assertIn("written beside the image", activation.advice("img", 252, beside=True)
                      or "")
        self.assertIn("version is unknown", activation.advice("img", None) or "")

    def test_helper_unit(self) -> None:
        text = activation.helper_unit()
        for line in ("ExecStart=/usr/bin/systemctl daemon-reload", "After=systemd-sysext.service",
                     "Before=sysinit.target shutdown.target", "WantedBy=sysinit.target",
                     "ConditionDirectoryNotEmpty=|/var/lib/extensions"):
            self.assertIn(line + "\n", text)
        self.assertEqual({"etc/systemd/system/sysinit.target.wants/"
                          "sysext-builder-reload.service": "../sysext-builder-reload.service"},
                         activation.helper_links("etc/systemd/system"))
