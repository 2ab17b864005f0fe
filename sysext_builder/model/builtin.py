"""Element names the builder implements itself, and the name ``--base`` supplies.

diskimage-builder's own elements pull in its plumbing elements through
``element-deps``; here their work is part of the builder, so resolution
(:func:`.graph.resolve`) never selects them and logs why.  DIB's operating
system elements provide ``operating-system``; with ``--base`` the base is the
operating system, so they are left out too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: diskimage-builder's plumbing elements whose work the builder does itself
BUILT_IN: Mapping[str, str] = {
    "package-installs": "package-installs files are installed by the builder itself",
    "pkg-map": "pkg-map files are read by the builder itself",
    "install-static": "static/ is copied by the builder itself",
    "install-types": "install types are selected by the builder itself",
    "source-repositories": "source-repository-* files are fetched by the builder itself",
    "manifests": "the manifest lies beside the image (NAME.manifest.json), never inside",
}
#: what DIB's operating-system elements provide: with --base, the base is the OS
OPERATING_SYSTEM = "operating-system"

#: diskimage-builder's elements that make a disk image's boot chain or layout, which
#: a system extension does not have; refused by name when they come from DIB
DISK_IMAGE_ONLY: Mapping[str, str] = {
    "bootloader": "installs a boot loader into the disk image",
    "uboot": "installs a boot loader into the disk image",
    "zipl": "installs a boot loader into the disk image",
    "vm": "partitions a disk and installs a boot loader",
    "iso": "makes an ISO image",
    "baremetal": "takes the kernel and initramfs out of the image",
    "cleanup-kernel-initrd": "removes kernels and initramfs images",
    "select-boot-kernel-initrd": "picks the kernel and initramfs the image boots",
    "dracut-ramdisk": "builds an initramfs",
    "dracut-regenerate": "rebuilds the initramfs",
    "ramdisk": "builds a ramdisk image",
    "ramdisk-base": "builds a ramdisk image",
    "replace-partition": "replaces a partition of a disk image",
    "replace-partition-redhat": "replaces a partition of a disk image",
}


def is_dib_element(path: Path) -> bool:
    """Whether ``path`` is an element directory of the diskimage-builder package."""
    return path.parent.name == "elements" and path.parent.parent.name == "diskimage_builder"
