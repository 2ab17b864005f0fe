"""A throwaway qemu VM that boots a base tree with extensions in it.

The root disk is an ext4 image made with ``mkfs.ext4 -d`` from an overlay of
the base (read-only lower layer) and a small upper layer holding what the
test adds: the images in ``/var/lib/extensions``, ``systemd-sysext.service``
enabled (Debian 12 ships it disabled), an optional host helper, and the
boot check (``boot-check`` beside this module) with its assertions.  The base is never
written; the overlay lives in a private mount namespace.  The kernel and
initrd are the base's own ``/boot/vmlinuz-*`` and ``/boot/initrd.img-*``
(a base made with ``debian:RELEASE/vm`` has them).

The VM gets two serial ports: ttyS0 is the console (kept as ``console.log``),
ttyS1 carries only the boot check's results (``results.log``).  KVM is used
when ``/dev/kvm`` can create a VM, else TCG.  Every run is bounded by a
timeout after which qemu's process group is killed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import EnvironmentUnusableError, UsageError

LOG = logging.getLogger(__name__)

_KVM_CREATE_VM = 0xAE01
_CHECK_UNIT = """\
# sysext-builder boot test: check the assertions once the boot settled.
[Unit]
Description=sysext-builder boot test
DefaultDependencies=no
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/etc/sysext-boot/check
StandardOutput=journal+console
"""
#: the guest side of the boot test, run by sysext-boot-check.service
CHECK_SCRIPT = Path(__file__).with_name("boot-check")
_MACHINE_ID = "5ec5e7b0015e4b0c9d0c0ffee0ddba11\n"
#: the NIC's MAC address (a config drive's network_data.json may name it)
MAC = "52:54:00:5e:c5:01"


@dataclass(frozen=True)
class VMSpec:
    """What to boot: a base tree, images for /var/lib/extensions, extra files."""

    base: Path
    images: Sequence[Path]
    assertions: Sequence[str]
    #: relative path in the VM -> content, written into the root disk
    files: Mapping[str, str] = field(default_factory=dict)
    #: relative path in the VM -> symlink target
    links: Mapping[str, str] = field(default_factory=dict)
    config_drive: Path | None = None
    #: more disk images (e.g. an OEM partition's file system), attached read-only
    drives: Sequence[Path] = ()
    #: more /etc/fstab lines (e.g. "LABEL=OEM /oem ext4 ro,nofail 0 2")
    fstab: Sequence[str] = ()
    memory_mb: int = 1024
    settle_s: int = 240


def kvm_usable() -> bool:
    """True when /dev/kvm opens and can create a VM (it may exist and not work)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        vm = fcntl.ioctl(fd, _KVM_CREATE_VM, 0)
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


#: the verdict of :func:`kvm_works`, probed once per process
_KVM_VERDICT: list[bool] = []
#: "kvm" or "tcg" forces the accelerator (no probe)
ACCEL_ENV = "SYSEXT_BOOT_ACCEL"


def kvm_works(kernel: Path, workdir: Path) -> bool:
    """True when a guest runs under KVM: the kernel booted without a root file
    system must reach its panic.  A usable /dev/kvm is not enough: under nested
    virtualisation the guest may die on its first instructions ("KVM internal
    error").  ``$SYSEXT_BOOT_ACCEL`` (kvm, tcg) skips the probe."""
    forced = os.environ.get(ACCEL_ENV, "")
    if forced in ("kvm", "tcg"):
        return forced == "kvm"
    if forced:
        raise UsageError(f"{ACCEL_ENV}={forced!r}: expected kvm or tcg")
    if not _KVM_VERDICT:
        _KVM_VERDICT.append(kvm_usable() and _probe_kvm(kernel, workdir))
    return _KVM_VERDICT[0]


def _probe_kvm(kernel: Path, workdir: Path) -> bool:
    console = workdir / "kvm-probe.log"
    argv = [runner.require_tool("qemu-system-x86_64"), "-machine", "q35", "-m", "256",
            "-display", "none", "-monitor", "none", "-no-reboot", "-accel", "kvm",
            "-cpu", "host", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1",
            "-serial", f"file:{console}"]
    # under KVM the panic comes within seconds; a broken KVM hangs or dies at once
    status, tail = runner.run_bounded(argv, 20)
    text = console.read_text("utf-8", "replace") if console.exists() else ""
    works = status is not None and "Kernel panic" in text
    why = next((line for line in tail if "KVM internal error" in line),
               "no panic within 20 s" if status is None else f"qemu status {status}")
    LOG.info("boot: %s", "KVM works" if works else
             f"KVM is present but a guest does not run under it ({why}): using TCG")
    return works


def kernel_of(base: Path) -> tuple[Path, Path]:
    """The newest ``boot/vmlinuz-*`` and its ``initrd.img-*`` in the base."""
    kernels = sorted((base / "boot").glob("vmlinuz-*"))
    for kernel in reversed(kernels):
        initrd = base / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
        if initrd.is_file():
            return kernel, initrd
    raise UsageError(f"boot test: the base {base} has no boot/vmlinuz-* with an initrd",
                     hint="use a base with a kernel, e.g. --base debian:bookworm/vm")


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _write_payload(spec: VMSpec, upper: Path) -> None:
    """Lay out what the test adds to the base in ``upper``."""
    ext = upper / "var/lib/extensions"
    ext.mkdir(parents=True)
    for image in spec.images:
        shutil.copy2(image, ext / image.name)
    check_dir = upper / "etc/sysext-boot"
    check_dir.mkdir(parents=True)
    shutil.copy2(CHECK_SCRIPT, check_dir / "check")
    (check_dir / "check").chmod(0o755)
    (check_dir / "assertions").write_text("".join(a + "\n" for a in spec.assertions))
    (check_dir / "settle").write_text(f"{spec.settle_s}\n")
    system = upper / "etc/systemd/system"
    links = {
        "etc/systemd/system/sysext-boot-check.service": None,
        "etc/systemd/system/multi-user.target.wants/sysext-boot-check.service":
            "../sysext-boot-check.service",
        "etc/systemd/system/sysinit.target.wants/systemd-sysext.service":
            "/usr/lib/systemd/system/systemd-sysext.service",
        **spec.links,
    }
    system.mkdir(parents=True)
    (system / "sysext-boot-check.service").write_text(_CHECK_UNIT)
    for rel, target in links.items():
        if target is None:
            continue
        dest = upper / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)
    fstab = "".join(line + "\n" for line in ["/dev/vda / ext4 rw 0 1", *spec.fstab])
    for rel, text in {"etc/machine-id": _MACHINE_ID, "etc/hostname": "sysext-boot\n",
                      "etc/fstab": fstab, **spec.files}.items():
        dest = upper / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)


def make_root_disk(spec: VMSpec, workdir: Path) -> Path:
    """An ext4 image of base + payload (the base is only a read-only lower layer)."""
    for tool in ("mkfs.ext4", "unshare", "mount"):
        runner.require_tool(tool)
    upper, work, merged = workdir / "upper", workdir / "ovl-work", workdir / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    _write_payload(spec, upper)
    size = _tree_size(spec.base) + _tree_size(upper)
    size_mb = size // 2**20 * 3 // 2 + 512
    disk = workdir / "root.img"
    script = ('mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && '
              'mkfs.ext4 -q -F -L root -d "$4" "$5" "$6M"')
    runner.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                str(spec.base), str(upper), str(work), str(merged), str(disk), str(size_mb)],
               what="making the VM's root disk")
    LOG.info("boot: root disk %s (%d MiB, base %s)", disk, size_mb, spec.base)
    return disk


def update_check(disk: Path, spec: VMSpec, workdir: Path) -> None:
    """Replace the assertions on a root disk of an earlier boot (the next boot of
    the same VM checks other things); nothing else on it changes."""
    debugfs = runner.require_tool("debugfs")
    new = workdir / "assertions"
    new.write_text("".join(a + "\n" for a in spec.assertions))
    commands = workdir / "debugfs.cmd"
    commands.write_text(f"rm /etc/sysext-boot/assertions\n"
                        f"write {new} /etc/sysext-boot/assertions\n")
    runner.run([debugfs, "-w", "-f", str(commands), str(disk)],
               what="updating the boot check on the VM's disk")


def make_drive(source: Path, label: str, workdir: Path) -> Path:
    """An ext4 file system labelled ``label`` holding ``source``'s files."""
    drive = workdir / f"{label}.img"
    size_mb = _tree_size(source) // 2**20 * 3 // 2 + 16
    runner.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(source), str(drive),
                f"{size_mb}M"], what=f"making the {label} drive")
    return drive


def make_config_drive(source: Path, workdir: Path) -> Path:
    """An ISO 9660 image labelled ``config-2`` holding ``source``'s files, as OpenStack
    makes config drives (a guest mounting it with vfat/iso9660-only options, as
    diskimage-builder's glean-early does, then works as on a cloud)."""
    if not (source / "openstack").is_dir():
        raise UsageError(f"config drive {source}: no openstack/ directory in it",
                         hint="lay it out as openstack/latest/meta_data.json, "
                              "network_data.json")
    drive = workdir / "config-2.iso"
    runner.run([runner.require_tool("xorriso"), "-as", "mkisofs", "-quiet", "-V", "config-2",
                "-J", "-R", "-o", str(drive), str(source)], what="making the config drive")
    return drive


def qemu_argv(kernel: Path, initrd: Path, disk: Path, workdir: Path, *,
              config_drive: Path | None, memory_mb: int, kvm: bool,
              drives: Sequence[Path] = ()) -> list[str]:
    argv = [runner.require_tool("qemu-system-x86_64"),
            "-machine", "q35", "-m", str(memory_mb), "-smp", "2",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "root=/dev/vda rw console=ttyS0,115200 panic=-1 "
                       "systemd.show_status=1 systemd.log_color=0",
            "-drive", f"file={disk},if=virtio,format=raw",
            "-nic", f"user,model=virtio-net-pci,mac={MAC}",
            "-serial", f"file:{workdir / 'console.log'}",
            "-serial", f"file:{workdir / 'results.log'}"]
    argv += ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg", "-cpu", "max"]
    for drive in ([config_drive] if config_drive is not None else []) + list(drives):
        argv += ["-drive", f"file={drive},if=virtio,format=raw,readonly=on"]
    return argv


@dataclass(frozen=True)
class BootRun:
    """What one boot left: the result port's text, the console, the time it took."""

    results: str
    console: Path
    seconds: float
    accel: str
    timed_out: bool
    #: the root disk: pass it to the next :func:`boot` to boot the same VM again
    disk: Path


def boot(spec: VMSpec, workdir: Path, timeout_s: float, *,
         root_disk: Path | None = None) -> BootRun:
    """Boot ``spec`` once; qemu never outlives ``timeout_s``.  With ``root_disk``
    (of an earlier boot) the VM boots again with what it wrote kept, and only
    the assertions replaced."""
    if os.geteuid() != 0:
        raise EnvironmentUnusableError("the boot test needs root",
                                       hint="it mounts an overlay over the base")
    kernel, initrd = kernel_of(spec.base)
    if root_disk is None:
        disk = make_root_disk(spec, workdir)
    else:
        disk = root_disk
        update_check(disk, spec, workdir)
    drive = make_config_drive(spec.config_drive, workdir) if spec.config_drive else None
    kvm = kvm_works(kernel, workdir)
    accel = "kvm" if kvm else "tcg"
    argv = qemu_argv(kernel, initrd, disk, workdir, config_drive=drive,
                     memory_mb=spec.memory_mb, kvm=kvm, drives=spec.drives)
    LOG.info("boot: %s with %s (%s), at most %d s", kernel.name, accel,
             ", ".join(i.name for i in spec.images) or "no images", timeout_s)
    started = time.monotonic()
    status, tail = runner.run_bounded(argv, timeout_s, on_line=LOG.debug)
    seconds = time.monotonic() - started
    timed_out = status is None
    if status not in (0, None):
        LOG.warning("boot: qemu exited with status %s: %s", status, " | ".join(tail[-3:]))
    results = workdir / "results.log"
    text = results.read_text("utf-8", "replace") if results.exists() else ""
    LOG.info("boot: finished in %.0f s%s", seconds, " (timed out)" if timed_out else "")
    return BootRun(results=_strip_cr(text), console=workdir / "console.log", seconds=seconds,
                   accel=accel, timed_out=timed_out, disk=disk)


def _strip_cr(text: str) -> str:
    return re.sub(r"\r", "", text)
