"""The boot test's pure parts: assertions, the guest's report, the VM's disk and argv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import fixtures

from sysext_builder.authoring.testing import boot, vm
from sysext_builder.errors import ElementFormatError, UsageError
from tests.base import TestCase

REPORT = """\
INFO settled-at 61.20 s; jobs left: none
RESULT PASS active chronyd.service :: active since 123 us
RESULT FAIL address 192.0.2.10/24 :: ens2 fe80::1/64
garbage the port may carry
--- sysext
HIERARCHY EXTENSIONS SINCE
/usr      azure-oem  Thu
--- journal
RESULT PASS inside a section is not a result :: x
END
"""


class TestAssertions(TestCase):

    def test_normalised(self) -> None:
        self.assertEqual("active chronyd.service",
                         boot.parse_assertion("  active   chronyd.service ", "e:1"))
        self.assertEqual("no-failed-units", boot.parse_assertion("no-failed-units", "e:1"))
        self.assertEqual("run python3 -c 'import glean'",
                         boot.parse_assertion("run python3 -c 'import glean'", "e:1"))

    def test_errors_name_the_place(self) -> None:
        for text, message in (
                ("activ x.service", "e:3: unknown boot assertion 'activ'"),
                ("no-failed-units x", "e:3: 'boot no-failed-units' takes no argument"),
                ("address 192.0.2.10", "e:3: 'boot address' needs an argument like "
                                       "'192.0.2.10/24', got '192.0.2.10'"),
                ("file usr/bin/x", "e:3: 'boot file' needs an argument like "
                                   "'/usr/bin/glean', got 'usr/bin/x'"),
                ("active", "e:3: 'boot active' needs an argument like 'chronyd.service', "
                           "got ''")):
            exc = self.assertRaises(ElementFormatError, boot.parse_assertion, text, "e:3")
            self.assertEqual(message, exc.message, text)


class TestReport(TestCase):

    def test_parse(self) -> None:
        report = boot.parse_report(REPORT)
        self.assertEqual([boot.Result(True, "active chronyd.service", "active since 123 us"),
                          boot.Result(False, "address 192.0.2.10/24", "ens2 fe80::1/64")],
                         report.results)
        self.assertEqual(["settled-at 61.20 s; jobs left: none"], report.info)
        self.assertEqual(["HIERARCHY EXTENSIONS SINCE", "/usr      azure-oem  Thu"],
                         report.section("sysext"))
        self.assertEqual(["RESULT PASS inside a section is not a result :: x"],
                         report.section("journal"))
        self.assertTrue(report.complete)

    def test_failures_include_unanswered_and_unfinished(self) -> None:
        report = boot.parse_report(REPORT.replace("END\n", ""))
        self.assertEqual(
            ["address 192.0.2.10/24: ens2 fe80::1/64",
             "user _chrony: no result (the check did not get to it)",
             "the boot check did not finish before the timeout: see the console log"],
            boot.failures(report, ["active chronyd.service", "user _chrony"], timed_out=True))

    def test_all_passed(self) -> None:
        report = boot.parse_report(REPORT)
        self.assertEqual([], boot.failures(report, ["active chronyd.service"],
                                           timed_out=False)[1:])


class TestGuestScript(TestCase):
    """boot-check itself: it runs in the guest, so here only its shell syntax."""

    def test_syntax(self) -> None:
        subprocess.run(["bash", "-n", str(vm.CHECK_SCRIPT)], check=True)
        self.assertTrue(os.access(vm.CHECK_SCRIPT, os.X_OK))


class TestDisk(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def test_kernel_of_takes_the_newest_with_an_initrd(self) -> None:
        boot_dir = self.dir / "boot"
        boot_dir.mkdir()
        for name in ("vmlinuz-6.1.0-1", "initrd.img-6.1.0-1", "vmlinuz-6.1.0-9"):
            (boot_dir / name).write_text("x")
        self.assertEqual((boot_dir / "vmlinuz-6.1.0-1", boot_dir / "initrd.img-6.1.0-1"),
                         vm.kernel_of(self.dir))
        (boot_dir / "initrd.img-6.1.0-9").write_text("x")
        self.assertEqual(boot_dir / "vmlinuz-6.1.0-9", vm.kernel_of(self.dir)[0])

    def test_no_kernel(self) -> None:
        exc = self.assertRaises(UsageError, vm.kernel_of, self.dir)
        self.assertIn("has no boot/vmlinuz-* with an initrd", exc.message)

    def test_payload(self) -> None:
        image = self.dir / "a.raw"
        image.write_bytes(b"img")
        spec = vm.VMSpec(base=self.dir, images=[image], assertions=["active a.service",
                                                                     "no-failed-units"],
                         files={"etc/x.conf": "x\n"},
                         links={"etc/systemd/system/multi-user.target.wants/h.service":
                                "../h.service"}, settle_s=99)
        upper = self.dir / "upper"
        vm._write_payload(spec, upper)
        self.assertEqual(b"img", (upper / "var/lib/extensions/a.raw").read_bytes())
        self.assertEqual("active a.service\nno-failed-units\n",
                         (upper / "etc/sysext-boot/assertions").read_text())
        self.assertEqual("99\n", (upper / "etc/sysext-boot/settle").read_text())
        self.assertEqual(vm.CHECK_SCRIPT.read_bytes(),
                         (upper / "etc/sysext-boot/check").read_bytes())
        system = upper / "etc/systemd/system"
        self.assertEqual("/usr/lib/systemd/system/systemd-sysext.service",
                         os.readlink(system / "sysinit.target.wants/systemd-sysext.service"))
        self.assertEqual("../sysext-boot-check.service",
                         os.readlink(system / "multi-user.target.wants/"
                                              "sysext-boot-check.service"))
        self.assertEqual("../h.service",
                         os.readlink(system / "multi-user.target.wants/h.service"))
        self.assertEqual("x\n", (upper / "etc/x.conf").read_text())
        self.assertEqual("/dev/vda / ext4 rw 0 1\n", (upper / "etc/fstab").read_text())


class TestNextBoot(TestCase):

    def test_update_check_replaces_only_the_assertions(self) -> None:
        work = Path(self.useFixture(fixtures.TempDir()).path)
        calls: list[list[str]] = []
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.require_tool",
                                             lambda tool: f"/sbin/{tool}"))
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.run",
                                             lambda argv, **kw: calls.append(list(argv))))
        spec = vm.VMSpec(base=work, images=[], assertions=["not-started a.service"])
        vm.update_check(work / "root.img", spec, work)
        self.assertEqual([["/sbin/debugfs", "-w", "-f", str(work / "debugfs.cmd"),
                           str(work / "root.img")]], calls)
        self.assertEqual(f"rm /etc/sysext-boot/assertions\n"
                         f"write {work / 'assertions'} /etc/sysext-boot/assertions\n",
                         (work / "debugfs.cmd").read_text())
        self.assertEqual("not-started a.service\n", (work / "assertions").read_text())


class TestQemu(TestCase):

    def test_argv(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.require_tool",
                                             lambda tool: f"/usr/bin/{tool}"))
        work = Path("/w")
        argv = vm.qemu_argv(Path("/b/vmlinuz"), Path("/b/initrd"), work / "root.img", work,
                            config_drive=work / "c.img", memory_mb=768, kvm=False)
        self.assertEqual("/usr/bin/qemu-system-x86_64", argv[0])
        pairs = list(zip(argv, argv[1:], strict=False))
        self.assertIn(("-accel", "tcg"), pairs)
        self.assertIn(("-m", "768"), pairs)
        self.assertIn("file:/w/console.log", argv)
        self.assertIn("file:/w/results.log", argv)
        self.assertLess(argv.index("file:/w/console.log"), argv.index("file:/w/results.log"))
        self.assertIn("file=/w/c.img,if=virtio,format=raw,readonly=on", argv)
        self.assertIn("-no-reboot", argv)
        oem = vm.qemu_argv(Path("/b/vmlinuz"), Path("/b/initrd"), work / "root.img", work,
                           config_drive=None, memory_mb=768, kvm=False,
                           drives=[work / "OEM.img"])
        self.assertIn("file=/w/OEM.img,if=virtio,format=raw,readonly=on", oem)
        kvm = vm.qemu_argv(Path("/b/vmlinuz"), Path("/b/initrd"), work / "root.img", work,
                           config_drive=None, memory_mb=768, kvm=True)
        self.assertEqual(["-accel", "kvm", "-cpu", "host"], kvm[-4:])
        self.assertFalse(any("c.img" in a for a in kvm))
