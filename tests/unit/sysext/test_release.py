"""extension-release: architecture names, identity, rendering, image names."""

from __future__ import annotations

import dataclasses

import fixtures

from sysext_builder.errors import ReleaseError
from sysext_builder.sysext import osrelease
from sysext_builder.sysext.release import (
    Identity,
    identity_from,
    release_path,
    render_extension_release,
    systemd_arch,
    valid_arch,
    validate_image_name,
)
from tests.base import TestCase

FLATCAR = {"NAME": "Flatcar Container Linux by Kinvolk", "ID": "flatcar", "ID_LIKE": "coreos",
           "VERSION_ID": "3975.2.0", "SYSEXT_LEVEL": "1.0"}


class TestSystemdArch(TestCase):

    def test_uname_machines_map_to_systemd_spelling(self) -> None:
        table = {"x86_64": "x86-64", "aarch64": "arm64", "i686": "x86", "i586": "x86",
                 "i386": "x86", "armv7l": "arm", "armv6l": "arm", "armv7b": "arm-be",
                 "ppc64le": "ppc64-le", "ppc64": "ppc64", "riscv64": "riscv64",
                 "s390x": "s390x", "loongarch64": "loongarch64", "aarch64_be": "arm64-be",
                 "amd64": "x86-64", "mips64el": "mips64-le"}
        for machine, expected in table.items():
            self.assertEqual(expected, systemd_arch(machine), machine)

    def test_systemd_names_pass_through(self) -> None:
        for name in ("x86-64", "arm64", "ppc64-le", "s390x"):
            self.assertEqual(name, systemd_arch(name))

    def test_default_is_this_host(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("platform.machine", lambda: "aarch64"))
        self.assertEqual("arm64", systemd_arch())

    def test_unknown_machine_is_a_release_error(self) -> None:
        err = self.assertRaises(ReleaseError, systemd_arch, "vax")
        self.assertIn("'vax'", str(err))
        self.assertIn("x86-64", err.hint or "")

    def test_valid_arch(self) -> None:
        for name in ("_any", "x86-64", "arm64", "x86", "riscv64", "loongarch64", "ppc64-le"):
            self.assertTrue(valid_arch(name), name)
        for name in ("x86_64", "aarch64", "amd64", "", "any", "ARM64"):
            self.assertFalse(valid_arch(name), name)


class TestIdentityFrom(TestCase):

    def test_takes_id_version_and_level_from_os_release(self) -> None:
        identity = identity_from(FLATCAR, architecture="x86-64")
        self.assertEqual(Identity(id="flatcar", version_id="3975.2.0", sysext_level="1.0",
                                  architecture="x86-64"), identity)

    def test_explicit_values_override_os_release(self) -> None:
        identity = identity_from(FLATCAR, id="debian", version_id="12", sysext_level="2.0")
        self.assertEqual(("debian", "12", "2.0"),
                         (identity.id, identity.version_id, identity.sysext_level))

    def test_explicit_empty_string_drops_inherited_value(self) -> None:
        identity = identity_from(FLATCAR, version_id="")
        self.assertIsNone(identity.version_id)
        self.assertEqual("1.0", identity.sysext_level)

    def test_without_any_id_the_hint_names_the_options(self) -> None:
        for os_release in (None, {"VERSION_ID": "12"}):
            err = self.assertRaises(ReleaseError, identity_from, os_release)
            self.assertIn("ID", str(err))
            self.assertIn("--os-id", err.hint or "")
            self.assertIn("--os-release", err.hint or "")

    def test_any_id_is_allowed_without_version(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger())
        identity = identity_from(None, id="_any", architecture="_any")
        self.assertEqual("_any", identity.id)
        self.assertNotIn("VERSION_ID", logger.output)

    def test_id_without_version_info_warns(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger())
        identity_from(None, id="arch")
        self.assertIn("neither VERSION_ID nor SYSEXT_LEVEL", logger.output)

    def test_invalid_ids_are_refused(self) -> None:
        for bad in ("Debian", "deb ian", "debian!", "ID=x"):
            err = self.assertRaises(ReleaseError, identity_from, None, id=bad)
            self.assertIn(repr(bad), str(err))

    def test_invalid_versions_and_levels_are_refused(self) -> None:
        for key, kwargs in (("VERSION_ID", {"version_id": "12 bookworm"}),
                            ("VERSION_ID", {"version_id": "1/2"}),
                            ("SYSEXT_LEVEL", {"sysext_level": "1.0\n"}),
                            ("SYSEXT_LEVEL", {"sysext_level": "1,0"})):
            err = self.assertRaises(ReleaseError, identity_from, None, id="debian", **kwargs)
            self.assertIn(key, str(err))

    def test_upper_case_version_is_accepted(self) -> None:
        self.assertEqual("12-RC1", identity_from(None, id="x", version_id="12-RC1").version_id)

    def test_uname_architecture_spelling_gets_a_did_you_mean(self) -> None:
        err = self.assertRaises(ReleaseError, identity_from, None, id="flatcar",
                                architecture="x86_64")
        self.assertIn("ARCHITECTURE 'x86_64'", str(err))
        self.assertIn("'x86-64'", err.hint or "")

    def test_scope_words_are_checked_and_normalised(self) -> None:
        self.assertEqual("system portable",
                         identity_from(None, id="x", scope="  system\tportable ").scope)
        for bad in ("", "system host", "   "):
            err = self.assertRaises(ReleaseError, identity_from, None, id="x", scope=bad)
            self.assertIn("SYSEXT_SCOPE", str(err))

    def test_extra_fields_are_validated(self) -> None:
        ok = identity_from(None, id="x", extra=[("SYSEXT_NAME", "Microsoft Azure")])
        self.assertEqual((("SYSEXT_NAME", "Microsoft Azure"),), ok.extra)
        for extra, needle in (([("ID", "y")], "duplicates a core field"),
                              ([("SYSEXT_ID", "a"), ("SYSEXT_ID", "b")], "given twice"),
                              ([("lower", "a")], "invalid os-release key"),
                              ([("SYSEXT_NAME", "a\nb")], "single line")):
            err = self.assertRaises(ReleaseError, identity_from, None, id="x", extra=extra)
            self.assertIn(needle, str(err))


class TestRender(TestCase):

    def test_azure_oem_shape_in_fixed_order(self) -> None:
        identity = Identity(id="flatcar", version_id="3975.2.0", architecture="x86-64",
                            reload_manager=True,
                            extra=(("SYSEXT_NAME", "Microsoft Azure"), ("SYSEXT_ID", "oem-azure")))
        self.assertEqual('ID=flatcar\nVERSION_ID=3975.2.0\nARCHITECTURE=x86-64\n'
                         'EXTENSION_RELOAD_MANAGER=1\nSYSEXT_NAME="Microsoft Azure"\n'
                         'SYSEXT_ID=oem-azure\n', render_extension_release(identity))

    def test_level_and_version_together_and_scope(self) -> None:
        identity = identity_from(FLATCAR, architecture="arm64", scope="system initrd")
        text = render_extension_release(identity)
        self.assertEqual(["ID", "VERSION_ID", "SYSEXT_LEVEL", "ARCHITECTURE", "SYSEXT_SCOPE"],
                         list(osrelease.parse(text)))
        self.assertEqual("system initrd", osrelease.parse(text)["SYSEXT_SCOPE"])

    def test_minimal_any(self) -> None:
        self.assertEqual("ID=_any\n", render_extension_release(Identity(id="_any")))

    def test_round_trips_through_the_parser(self) -> None:
        identity = identity_from(None, id="debian", version_id="12", architecture="x86-64",
                                 extra=[("SYSEXT_HOME_URL", "https://example.com/a b?c=$d")])
        fields = osrelease.parse(render_extension_release(identity))
        self.assertEqual("https://example.com/a b?c=$d", fields["SYSEXT_HOME_URL"])

    def test_a_hand_built_invalid_identity_is_refused_at_render(self) -> None:
        bad = dataclasses.replace(Identity(id="x"), architecture="amd64")
        self.assertRaises(ReleaseError, render_extension_release, bad)


class TestImageName(TestCase):

    def test_good_names(self) -> None:
        for name in ("oem-azure", "glean", "docker-24.0.9", "a", "python3.11-tools"):
            validate_image_name(name)
            self.assertEqual(f"usr/lib/extension-release.d/extension-release.{name}",
                             release_path(name))

    def test_names_systemd_cannot_match(self) -> None:
        table = {"": "empty", "a/b": "'/'", ".hidden": "starts with '.'", "..": "'.'",
                 "oem.raw": ".raw", "foo.sysext": ".sysext", "oem_azure": "'_'",
                 "docker+1": "'+'", "tab\tname": "control", "x" * 238: "longer"}
        for name, needle in table.items():
            err = self.assertRaises(ReleaseError, validate_image_name, name)
            self.assertIn(needle, str(err), name)
            self.assertIsNotNone(err.hint)

    def test_release_path_refuses_traversal(self) -> None:
        self.assertRaises(ReleaseError, release_path, "../../etc/passwd")

    def test_longest_allowed_name(self) -> None:
        validate_image_name("x" * 237)
