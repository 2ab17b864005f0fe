"""Flatcar's OEM partition and run-once units, booted (issue 15): an OEM image
built twice (versions 1.0 and 2.0) into one ``--oem-partition`` tree, a VM of
``debian:trixie/vm`` with the OEM activation helper and that tree as an ext4
drive labelled OEM at /oem.  Three boots of the same root disk: the first
merges version 1.0 through the helper's link and runs the once unit; the
second does not run it again; the third, with 2.0 added to the partition,
links 2.0 and runs it again.  Needs root, mmdebstrap, qemu, mkfs.ext4,
debugfs, mksquashfs and the Debian mirror.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import testtools

from sysext_builder.authoring.testing import boot, vm
from sysext_builder.install.cache import Cache
from sysext_builder.staging.base import open_base
from sysext_builder.sysext import oemlink
from tests.base import require, write_tree
from tests.functional import base
from tests.functional.debian_base import remove_tree
from tests.functional.test_boot import cache
from tests.functional.test_named_base import mirror_problem

PROBE = "oem-once-probe.service"
PROBE_UNIT = ("[Unit]\nDescription=runs once per version of the OEM extension\n"
              "[Service]\nType=oneshot\nExecStart=/bin/true\n")


class TestOemPartitionBoot(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        base.require_root("booting a VM from a named base")
        for tool, package in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"),
                              ("debugfs", "e2fsprogs"), ("mksquashfs", "squashfs-tools"),
                              ("qemu-system-x86_64", "qemu-system-x86")):
            base.require_tool(tool, package)
        problem = mirror_problem()
        require("network", problem is None, f"no Debian mirror: {problem}")
        self.work = Path(tempfile.mkdtemp(prefix="sysext-oem-boot-", dir="/var/tmp"))
        if os.environ.get("SYSEXT_TEST_KEEP") != "1":
            self.addCleanup(remove_tree, self.work)
        write_tree(self.work / "elements", {"oem-once-test": {
            "deps": ["qemu-oem"], "README.rst": "a once unit in an OEM image\n",
            "units": f"once {PROBE} multi-user.target\n",
            f"static/usr/lib/systemd/system/{PROBE}": PROBE_UNIT}})
        self.partition = self.work / "oem"

    def build(self, version: str) -> None:
        proc = base.run("sysext-create", "--element-path", str(self.work / "elements"),
                        "oem-once-test", "--os-id", "debian", "--os-version-id", "13",
                        "--oem-partition", str(self.partition),
                        "-o", str(self.work / f"out-{version}") + "/",
                        env={"DIB_OEM_VERSION": version}, timeout=600)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])

    def boot(self, tree: Path, assertions: list[str], n: int,
             disk: Path | None) -> Path:
        workdir = self.work / f"boot-{n}"
        workdir.mkdir()
        oem = self.work / f"oem-{n}"
        shutil.copytree(self.partition, oem, symlinks=True)
        spec = vm.VMSpec(
            base=tree, images=[], assertions=assertions,
            files={f"etc/systemd/system/{oemlink.HELPER_UNIT}": oemlink.helper_unit()},
            links=oemlink.helper_links("etc/systemd/system"),
            drives=[vm.make_drive(oem, "OEM", workdir)],
            fstab=["LABEL=OEM /oem ext4 ro 0 2"])
        ran = vm.boot(spec, workdir, 600, root_disk=disk)
        problems = boot.failures(boot.parse_report(ran.results), assertions,
                                 timed_out=ran.timed_out)
        kept = ""
        if problems:  # the work dir goes with the test: keep what explains the failure
            kept_dir = Path(tempfile.mkdtemp(prefix=f"sysext-oem-boot-{n}-failed-",
                                             dir="/var/tmp"))
            for log in (ran.console, workdir / "results.log"):
                if log.exists():
                    shutil.copy(log, kept_dir / log.name)
            kept = f"; logs kept in {kept_dir}"
        self.assertEqual([], problems, f"boot {n}{kept}")
        return ran.disk

    def test_three_boots(self) -> None:
        c = Cache(cache())
        with c.lock():
            tree = open_base("debian:trixie/vm", c.subdir("bases")).path
        self.build("1.0")
        listing = sorted(os.listdir(self.partition / "sysext"))
        self.assertEqual(["active-oem-qemu", "oem-qemu-1.0.raw"], listing)
        linked = "run readlink /etc/extensions/oem-qemu.raw | grep -qx /oem/sysext/oem-qemu-{}.raw"
        disk = self.boot(tree, ["merged oem-qemu", linked.format("1.0"),
                                f"started {PROBE}"], 1, None)
        self.boot(tree, ["merged oem-qemu", linked.format("1.0"), f"not-started {PROBE}"],
                  2, disk)
        self.build("2.0")
        self.assertEqual(["active-oem-qemu", "oem-qemu-1.0.raw", "oem-qemu-2.0.raw"],
                         sorted(os.listdir(self.partition / "sysext")))
        self.boot(tree, ["merged oem-qemu", linked.format("2.0"), f"started {PROBE}"],
                  3, disk)
