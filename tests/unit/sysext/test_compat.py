"""The compatibility algorithm, as a table mirroring systemd's extension_release_validate()."""

from __future__ import annotations

from typing import Any

from sysext_builder.sysext.compat import image_name, incompatibility, release_name_ok
from tests.base import TestCase

FLATCAR = {"ID": "flatcar", "ID_LIKE": "coreos", "VERSION_ID": "3975.2.0", "SYSEXT_LEVEL": "1.0"}
DEBIAN = {"ID": "debian", "VERSION_ID": "12"}
ARCH = {"ID": "arch"}  # rolling release: neither VERSION_ID nor SYSEXT_LEVEL
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"}
LEVEL_ONLY = {"ID": "flatcar", "SYSEXT_LEVEL": "1.0"}

# (name, extension fields, host, keyword arguments, expected reason or None)
TABLE: list[tuple[str, dict[str, str], dict[str, str], dict[str, Any], str | None]] = [
    ("exact version match", {"ID": "debian", "VERSION_ID": "12"}, DEBIAN, {}, None),
    ("version mismatch", {"ID": "debian", "VERSION_ID": "11"}, DEBIAN, {},
     "extension VERSION_ID '11' does not match host VERSION_ID '12'"),
    ("version compare is exact strings", {"ID": "debian", "VERSION_ID": "12.0"}, DEBIAN, {},
     "extension VERSION_ID '12.0' does not match host VERSION_ID '12'"),
    ("missing version", {"ID": "debian"}, DEBIAN, {},
     "extension has no VERSION_ID to match host VERSION_ID '12'"),
    ("empty version counts as missing", {"ID": "debian", "VERSION_ID": ""}, DEBIAN, {},
     "extension has no VERSION_ID to match host VERSION_ID '12'"),
    ("level match ignores version", {"ID": "flatcar", "SYSEXT_LEVEL": "1.0",
                                     "VERSION_ID": "1.2.3"}, FLATCAR, {}, None),
    ("level mismatch", {"ID": "flatcar", "SYSEXT_LEVEL": "1.0"},
     dict(FLATCAR, SYSEXT_LEVEL="2.0"), {},
     "extension SYSEXT_LEVEL '1.0' does not match host SYSEXT_LEVEL '2.0'"),
    ("level mismatch even when version matches",
     {"ID": "flatcar", "SYSEXT_LEVEL": "2", "VERSION_ID": "3975.2.0"}, FLATCAR, {},
     "extension SYSEXT_LEVEL '2' does not match host SYSEXT_LEVEL '1.0'"),
    ("no level on the image falls back to VERSION_ID",
     {"ID": "flatcar", "VERSION_ID": "3975.2.0"}, FLATCAR, {}, None),
    ("level host, image without level or version",
     {"ID": "flatcar"}, FLATCAR, {},
     "extension has no VERSION_ID to match host VERSION_ID '3975.2.0' "
     "(or SYSEXT_LEVEL to match '1.0')"),
    ("level on image, host without level compares VERSION_ID",
     {"ID": "debian", "SYSEXT_LEVEL": "1.0"}, DEBIAN, {},
     "extension has no VERSION_ID to match host VERSION_ID '12'"),
    ("host with only a level accepts an image without one", {"ID": "flatcar"}, LEVEL_ONLY, {},
     None),
    ("rolling host accepts any version", {"ID": "arch", "VERSION_ID": "whatever"}, ARCH, {}, None),
    ("rolling host accepts no version", {"ID": "arch"}, ARCH, {}, None),
    ("ID mismatch", {"ID": "debian", "VERSION_ID": "3975.2.0"}, {"ID": "flatcar",
                                                                 "VERSION_ID": "3975.2.0"}, {},
     "extension ID 'debian' does not match host ID 'flatcar'"),
    ("ID mismatch names ID_LIKE", {"ID": "fedora"}, UBUNTU, {},
     "extension ID 'fedora' does not match host ID 'ubuntu' or ID_LIKE 'debian'"),
    ("ID_LIKE matches (systemd >= 258)", {"ID": "debian", "VERSION_ID": "24.04"}, UBUNTU, {},
     None),
    ("ID_LIKE ignored before 258", {"ID": "debian", "VERSION_ID": "24.04"}, UBUNTU,
     {"id_like": False}, "extension ID 'debian' does not match host ID 'ubuntu'"),
    ("ID_LIKE is word-wise", {"ID": "deb"}, UBUNTU, {},
     "extension ID 'deb' does not match host ID 'ubuntu' or ID_LIKE 'debian'"),
    ("ID is case sensitive", {"ID": "Debian", "VERSION_ID": "12"}, DEBIAN, {},
     "extension ID 'Debian' does not match host ID 'debian'"),
    ("_any ID accepts without version", {"ID": "_any"}, DEBIAN, {}, None),
    ("_any ID accepts any level", {"ID": "_any", "SYSEXT_LEVEL": "9"}, FLATCAR, {}, None),
    ("missing ID", {"VERSION_ID": "12"}, DEBIAN, {}, "extension has no ID"),
    ("empty ID", {"ID": "", "VERSION_ID": "12"}, DEBIAN, {}, "extension has no ID"),
    ("no release data at all", {}, DEBIAN, {}, "extension carries no release data"),
    ("host without ID", {"ID": "_any"}, {"VERSION_ID": "12"}, {}, "host os-release has no ID"),
    ("architecture match", {"ID": "debian", "VERSION_ID": "12", "ARCHITECTURE": "x86-64"},
     DEBIAN, {}, None),
    ("architecture mismatch", {"ID": "debian", "VERSION_ID": "12", "ARCHITECTURE": "arm64"},
     DEBIAN, {}, "extension architecture 'arm64' does not match host 'x86-64'"),
    ("architecture _any", {"ID": "debian", "VERSION_ID": "12", "ARCHITECTURE": "_any"},
     DEBIAN, {}, None),
    ("architecture empty counts as absent", {"ID": "debian", "VERSION_ID": "12",
                                             "ARCHITECTURE": ""}, DEBIAN, {}, None),
    ("architecture checked before ID", {"ID": "fedora", "ARCHITECTURE": "arm64"}, DEBIAN, {},
     "extension architecture 'arm64' does not match host 'x86-64'"),
    ("architecture checked even for ID=_any", {"ID": "_any", "ARCHITECTURE": "arm64"}, DEBIAN,
     {}, "extension architecture 'arm64' does not match host 'x86-64'"),
    ("default scope covers system", {"ID": "_any"}, DEBIAN, {}, None),
    ("default scope covers portable", {"ID": "_any"}, DEBIAN, {"scope": "portable"}, None),
    ("default scope excludes initrd", {"ID": "_any"}, DEBIAN, {"scope": "initrd"},
     "extension scope 'system portable' (default) does not include 'initrd'"),
    ("explicit scope without system", {"ID": "_any", "SYSEXT_SCOPE": "portable"}, DEBIAN, {},
     "extension scope 'portable' does not include 'system'"),
    ("explicit initrd scope", {"ID": "_any", "SYSEXT_SCOPE": "initrd system"}, DEBIAN,
     {"scope": "initrd"}, None),
    ("empty scope matches nothing", {"ID": "_any", "SYSEXT_SCOPE": ""}, DEBIAN, {},
     "extension scope '' does not include 'system'"),
    ("scope is word-wise", {"ID": "_any", "SYSEXT_SCOPE": "systemd"}, DEBIAN, {},
     "extension scope 'systemd' does not include 'system'"),
    ("scope checked before architecture",
     {"ID": "_any", "SYSEXT_SCOPE": "portable", "ARCHITECTURE": "arm64"}, DEBIAN, {},
     "extension scope 'portable' does not include 'system'"),
    ("flatcar OEM extension", {"ID": "flatcar", "VERSION_ID": "3975.2.0",
                               "ARCHITECTURE": "x86-64", "EXTENSION_RELOAD_MANAGER": "1",
                               "SYSEXT_NAME": "Microsoft Azure"}, FLATCAR, {}, None),
]


class TestIncompatibility(TestCase):

    def test_table(self) -> None:
        for name, ext, host, kwargs, expected in TABLE:
            self.assertEqual(expected, incompatibility(ext, host, host_arch="x86-64", **kwargs),
                             name)

    def test_reasons_are_one_line(self) -> None:
        for _name, ext, host, kwargs, _expected in TABLE:
            reason = incompatibility(ext, host, host_arch="x86-64", **kwargs)
            self.assertNotIn("\n", reason or "")


class TestReleaseName(TestCase):

    def test_image_name_by_systemd_version(self) -> None:
        table = [
            ("oem-azure.raw", 252, "oem-azure"),
            ("oem-azure.raw", 256, "oem-azure"),
            ("docker_24.0.raw", 252, "docker_24.0"),
            ("docker_24.0.raw", 256, "docker"),
            ("docker+3-1.raw", 256, "docker"),
            ("tools.sysext.raw", 252, "tools.sysext"),
            ("tools.sysext.raw", 256, "tools"),
            ("/var/lib/extensions/glean.raw", 256, "glean"),
            ("glean", 252, "glean"),
            ("glean/", 256, "glean"),
        ]
        for file_name, version, expected in table:
            self.assertEqual(expected, image_name(file_name, version),
                             f"{file_name} on {version}")

    def test_release_name_ok(self) -> None:
        table = [
            ("oem-azure.raw", "oem-azure", 252, True),
            ("oem-azure.raw", "oem-azure", 258, True),
            ("oem-azure-3975.2.0.raw", "oem-azure", 256, False),
            ("docker_24.0.raw", "docker", 256, True),
            ("docker_24.0.raw", "docker", 252, False),
            ("docker_24.0.raw", "docker_24.0", 252, True),
            ("docker_24.0.raw", "docker_24.0", 256, False),
            ("Docker.raw", "docker", 256, False),
            (".#tmp.raw", ".#tmp", 256, False),
            ("_1.raw", "", 256, False),
        ]
        for file_name, suffix, version, expected in table:
            self.assertEqual(expected, release_name_ok(file_name, suffix, version),
                             f"{file_name} vs {suffix} on {version}")
