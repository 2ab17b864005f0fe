"""package-installs parsing, pkg-map lookups and the selection of package actions."""

from __future__ import annotations

import json
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import ElementFormatError, InstallError
from sysext_builder.install import packages
from sysext_builder.install.packages import MISSING, Condition, PackageAction, PackageSpec, PkgMap
from sysext_builder.model.element import load_element

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "packages"
FULL = FIXTURES / "full" / "package-installs.yaml"

TARGET = {"arch": "x86-64", "distro": "debian", "family": "debian", "release": "bookworm"}
ENV = {"DIB_SIMPLE_INIT_NETWORKMANAGER": "1", "FEATURE_A": "1", "FEATURE_B": "on"}


def names(actions: list[PackageAction]) -> list[str]:
    return [a.name for a in actions]


class TestParsePackageInstalls(testtools.TestCase):

    def test_every_key_of_the_full_fixture(self) -> None:
        specs = packages.parse_package_installs(FULL, "demo")
        by_name = {s.name: s for s in specs if s.name != "per-arch"}
        self.assertEqual(PackageSpec(element="demo", file=FULL, name="libxml2"),
                         by_name["libxml2"])
        self.assertEqual("pre-install.d", by_name["grub2"].phase)
        self.assertTrue(by_name["networkmanager"].uninstall)
        self.assertFalse(by_name["networkmanager"].build_only)
        self.assertEqual("source", by_name["os-collect-config"].installtype)
        self.assertEqual(("amd64", "x86_64"), by_name["linux-image-amd64"].arch)
        self.assertEqual(("ppc64", "ppc64le"), by_name["dmidecode"].not_arch)
        self.assertTrue(by_name["libssl-dev"].build_only)
        self.assertEqual((Condition("DIB_SIMPLE_INIT_NETWORKMANAGER", "=", "0"),),
                         by_name["network-scripts"].when)
        self.assertEqual((Condition("DIB_SIMPLE_INIT_NETWORKMANAGER", "!=", "0"),),
                         by_name["NetworkManager"].when)
        self.assertEqual((Condition("FEATURE_A", "=", "1"), Condition("FEATURE_B", "!=", "off")),
                         by_name["both-flags"].when)

    def test_a_list_of_dicts_gives_one_spec_per_dict_in_file_order(self) -> None:
        specs = [s for s in packages.parse_package_installs(FULL, "demo") if s.name == "per-arch"]
        self.assertEqual([("post-install.d", ("arm64",)), ("install.d", ("amd64",))],
                         [(s.phase, s.arch) for s in specs])

    def test_json_form(self) -> None:
        path = FIXTURES / "json" / "package-installs.json"
        specs = packages.parse_package_installs(path, "j")
        self.assertEqual(["libxml2", "grub2", "networkmanager", "os-collect-config"],
                         [s.name for s in specs])
        self.assertEqual("pre-install.d", specs[1].phase)
        self.assertTrue(specs[2].uninstall)
        self.assertEqual("source", specs[3].installtype)

    def test_unknown_key_names_file_package_and_key_with_a_suggestion(self) -> None:
        path = FIXTURES / "typo" / "package-installs.yaml"
        err = self.assertRaises(ElementFormatError, packages.parse_package_installs, path, "t")
        self.assertEqual(f"{path}: package 'dmidecode': unknown key 'not_arch'; "
                         "did you mean 'not-arch'?", err.message)
        self.assertIn("valid keys: phase, uninstall", err.hint or "")

    def test_bad_yaml_names_file_and_line(self) -> None:
        path = FIXTURES / "bad-yaml" / "package-installs.yaml"
        err = self.assertRaises(ElementFormatError, packages.parse_package_installs, path, "b")
        self.assertTrue(err.message.startswith(f"{path}:3: invalid YAML: "), err.message)
        self.assertIn("at line 2", err.message)

    def _write(self, name: str, text: str) -> Path:
        directory = Path(self.useFixture(fixtures.TempDir()).path)
        path = directory / name
        path.write_text(text)
        return path

    def test_bad_json_names_file_and_line(self) -> None:
        path = self._write("package-installs.json", '{\n "a": null,\n "b": {phase}\n}\n')
        err = self.assertRaises(ElementFormatError, packages.parse_package_installs, path, "e")
        self.assertTrue(err.message.startswith(f"{path}:3: invalid JSON"), err.message)

    def test_invalid_values_are_rejected(self) -> None:
        cases = {
            "a:\n  phase: install\n": "phase 'install' is not one of pre-install.d, install.d, "
                                      "post-install.d; did you mean 'install.d'?",
            "a:\n  arch: amd64\n  not-arch: arm64\n": "give 'arch' or 'not-arch', not both",
            "a:\n  when: FOO == 1\n": "malformed 'when' 'FOO == 1'",
            "a:\n  when: just-a-word\n": "malformed 'when' 'just-a-word'",
            "a:\n  uninstall: yes please\n": "'uninstall' must be true or false",
            "a:\n  arch: ''\n": "empty architecture list",
            "a: 3\n": "expected nothing, a mapping of options or a list of mappings, not int",
            "a: []\n": "empty list of options",
            "two words:\n": "invalid package name 'two words'",
        }
        for text, expected in cases.items():
            path = self._write("package-installs.yaml", text)
            err = self.assertRaises(ElementFormatError, packages.parse_package_installs,
                                    path, "e")
            self.assertIn(expected, err.message, text)
            self.assertTrue(err.message.startswith(str(path)), err.message)

    def test_dib_python_version_selects_by_the_targets_python_as_in_dib(self) -> None:
        path = self._write("package-installs.yaml", "python-dev:\n  dib_python_version: 2\n"
                           "python3-dev:\n  dib_python_version: 3\nalways:\n")
        specs = packages.parse_package_installs(path, "e")

        def chosen(version: str | None) -> list[str]:
            env = {} if version is None else {"DIB_PYTHON_VERSION": version}
            return [a.name for a in packages.select(specs, phase="install.d", environ=env,
                                                    arch="x86-64", distro="debian",
                                                    family="debian", release="12")]

        self.assertEqual(["always", "python3-dev"], chosen("3"))
        self.assertEqual(["always", "python3-dev"], chosen(None))
        self.assertEqual(["always", "python-dev"], chosen("2"))
        path = self._write("package-installs.yaml", "x:\n  dib_python_version: 4\n")
        err = self.assertRaises(ElementFormatError, packages.parse_package_installs, path, "e")
        self.assertIn("dib_python_version must be 2 or 3, not 4", err.message)

    def test_top_level_must_be_a_mapping_and_empty_is_nothing(self) -> None:
        path = self._write("package-installs.yaml", "- a\n- b\n")
        err = self.assertRaises(ElementFormatError, packages.parse_package_installs, path, "e")
        self.assertIn("expected a mapping of package names, not list", err.message)
        self.assertEqual([], packages.parse_package_installs(
            self._write("package-installs.yaml", "# nothing yet\n"), "e"))


class TestPkgMap(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.pmap = packages.parse_pkg_map(FIXTURES / "full" / "pkg-map")

    def test_most_specific_section_wins(self) -> None:
        lookup = self.pmap.lookup
        self.assertEqual("python3.11-minimal", lookup("python3", "debian", "debian", "bookworm"))
        self.assertEqual("python3", lookup("python3", "debian", "debian", "trixie"))
        self.assertEqual("python3-ubuntu", lookup("python3", "ubuntu", "debian", "noble"))
        self.assertEqual("python3-rh", lookup("python3", "fedora", "redhat", "40"))
        self.assertEqual("grub-pc", lookup("grub2", "fedora", "redhat", "40"))

    def test_empty_value_skips_and_unmapped_is_missing(self) -> None:
        self.assertIsNone(self.pmap.lookup("network-scripts", "debian", "debian", "bookworm"))
        self.assertIs(MISSING, self.pmap.lookup("network-scripts", "ubuntu", "debian", ""))
        self.assertIs(MISSING, self.pmap.lookup("curl", "debian", "debian", "bookworm"))

    def test_release_applies_only_to_its_distro(self) -> None:
        pmap = PkgMap(release={"debian": {"12": {"x": "x-deb12"}}}, default={"x": "x"})
        self.assertEqual("x-deb12", pmap.lookup("x", "debian", "debian", "12"))
        self.assertEqual("x", pmap.lookup("x", "ubuntu", "debian", "12"))

    def _write(self, doc: object) -> Path:
        path = Path(self.useFixture(fixtures.TempDir()).path) / "pkg-map"
        path.write_text(json.dumps(doc, indent=1))
        return path

    def test_malformed_maps_are_rejected(self) -> None:
        cases = [
            ({"distros": {}}, "unknown section 'distros'; did you mean 'distro'?"),
            ({"default": {"a": 1}}, "'a' must map to a string"),
            ({"family": {"debian": ["a"]}}, "family.debian: expected an object"),
            ({"release": {"debian": {"12": {"a": None}}}}, "'a' must map to a string"),
            (["a"], "expected a JSON object"),
        ]
        for doc, expected in cases:
            path = self._write(doc)
            err = self.assertRaises(ElementFormatError, packages.parse_pkg_map, path)
            self.assertIn(expected, err.message)
            self.assertTrue(err.message.startswith(str(path)), err.message)


class TestTargetNames(testtools.TestCase):

    def test_family_of(self) -> None:
        self.assertEqual("debian", packages.family_of("ubuntu"))
        self.assertEqual("redhat", packages.family_of("rocky", "rhel centos fedora"))
        self.assertEqual("redhat", packages.family_of("almalinux"))
        self.assertEqual("suse", packages.family_of("opensuse-tumbleweed"))
        self.assertEqual("suse", packages.family_of("sles"))
        self.assertEqual("gentoo", packages.family_of("gentoo"))
        self.assertEqual("debian", packages.family_of("raspbian", "debian"))
        self.assertEqual("debian", packages.family_of("linuxmint", ["ubuntu", "debian"]))
        self.assertEqual("", packages.family_of("flatcar", "coreos"))

    def test_dib_arch(self) -> None:
        self.assertEqual(
            ["amd64", "amd64", "amd64", "arm64", "arm64", "i386", "ppc64le", "s390x",
             "riscv64", "armhf", "sparc64"],
            [packages.dib_arch(a) for a in ("x86-64", "x86_64", "amd64", "arm64", "aarch64",
                                            "x86", "ppc64-le", "s390x", "riscv64", "arm",
                                            "sparc64")])


class TestSelect(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.specs = packages.parse_package_installs(FULL, "demo")
        self.pmap = packages.parse_pkg_map(FIXTURES / "full" / "pkg-map")

    def select(self, phase: str = "install.d", env: dict[str, str] | None = None,
               pkg_map: PkgMap | None = None, **target: str) -> list[PackageAction]:
        return packages.select(self.specs, phase=phase, environ=ENV if env is None else env,
                               pkg_map=pkg_map, **{**TARGET, **target})

    def test_install_phase_on_amd64_without_map(self) -> None:
        self.assertEqual(
            ["NetworkManager", "both-flags", "dmidecode", "libssl-dev", "libxml2",
             "linux-image-amd64", "networkmanager", "os-collect-config", "per-arch", "python3"],
            names(self.select()))

    def test_flags_are_carried(self) -> None:
        actions = {a.name: a for a in self.select()}
        self.assertEqual(PackageAction(element="demo", phase="install.d", name="libssl-dev",
                                       logical="libssl-dev", uninstall=False, build_only=True),
                         actions["libssl-dev"])
        self.assertTrue(actions["networkmanager"].uninstall)
        self.assertFalse(actions["libxml2"].uninstall or actions["libxml2"].build_only)

    def test_phase_filter(self) -> None:
        self.assertEqual(["grub2"], names(self.select("pre-install.d")))
        self.assertEqual([], names(self.select("post-install.d")))
        self.assertEqual(["per-arch"], names(self.select("post-install.d", arch="arm64")))

    def test_arch_and_not_arch(self) -> None:
        on_arm = names(self.select(arch="aarch64"))
        self.assertNotIn("linux-image-amd64", on_arm)
        self.assertNotIn("per-arch", on_arm)  # its install.d entry is amd64 only
        self.assertIn("dmidecode", on_arm)
        on_ppc = names(self.select(arch="ppc64-le"))
        self.assertNotIn("dmidecode", on_ppc)
        self.assertIn("linux-image-amd64", names(self.select(arch="amd64")))

    def test_installtype_follows_the_element_variable_then_the_default(self) -> None:
        env = dict(ENV, DIB_INSTALLTYPE_demo="package")
        selected = names(self.select(env=env))
        self.assertIn("os-collect-config-pkg", selected)
        self.assertNotIn("os-collect-config", selected)
        env = dict(ENV, DIB_DEFAULT_INSTALLTYPE="package")
        self.assertIn("os-collect-config-pkg", names(self.select(env=env)))

    def test_installtype_variable_of_a_dashed_element(self) -> None:
        spec = PackageSpec(element="simple-init", file=FULL, name="glean-pkg",
                           installtype="package")
        found = packages.select([spec], phase="install.d",
                                environ={"DIB_INSTALLTYPE_simple_init": "package"},
                                pkg_map=None, **TARGET)
        self.assertEqual(["glean-pkg"], names(found))

    def test_when_equal_not_equal_and_all(self) -> None:
        off = dict(ENV, DIB_SIMPLE_INIT_NETWORKMANAGER="0")
        self.assertIn("network-scripts", names(self.select(env=off)))
        self.assertNotIn("NetworkManager", names(self.select(env=off)))
        self.assertNotIn("both-flags", names(self.select(env=dict(ENV, FEATURE_B="off"))))
        self.assertNotIn("both-flags", names(self.select(env=dict(ENV, FEATURE_A="0"))))

    def test_undefined_when_variable_names_element_file_and_package(self) -> None:
        env = {k: v for k, v in ENV.items() if k != "FEATURE_B"}
        err = self.assertRaises(InstallError, self.select, env=env)
        self.assertEqual(f"element demo: {FULL}: package 'both-flags': "
                         "'when: FEATURE_B != off' uses FEATURE_B, which is not set",
                         err.message)
        self.assertIn("environment.d", err.hint or "")

    def test_pkg_map_maps_skips_and_splits(self) -> None:
        actions = self.select(pkg_map=self.pmap, env=dict(ENV, DIB_SIMPLE_INIT_NETWORKMANAGER="0"))
        by_logical: dict[str, list[str]] = {}
        for action in actions:
            by_logical.setdefault(action.logical, []).append(action.name)
        self.assertEqual(["python3.11-minimal"], by_logical["python3"])
        self.assertEqual(["libxml2", "libxml2-utils"], by_logical["libxml2"])
        self.assertNotIn("network-scripts", by_logical)  # "" for distro debian
        self.assertEqual(["dmidecode"], by_logical["dmidecode"])  # unmapped: as is

    def test_pkg_map_per_element(self) -> None:
        other = PackageSpec(element="other", file=FULL, name="python3")
        spec = PackageSpec(element="demo", file=FULL, name="python3")
        actions = packages.select([other, spec], phase="install.d", environ={},
                                  pkg_map={"demo": self.pmap, "other": None},
                                  **dict(TARGET, release="trixie"))
        self.assertEqual([("demo", "python3"), ("other", "python3")],
                         [(a.element, a.name) for a in actions])
        rh = packages.select([spec], phase="install.d", environ={},
                             pkg_map={"demo": self.pmap}, arch="x86-64", distro="fedora",
                             family="redhat", release="40")
        self.assertEqual(["python3-rh"], names(rh))

    def test_order_is_by_element_then_name_whatever_the_input_order(self) -> None:
        specs = [PackageSpec(element=e, file=FULL, name=n)
                 for e, n in (("zeta", "b"), ("alpha", "z"), ("zeta", "a"), ("alpha", "c"))]
        forward = packages.select(specs, phase="install.d", environ={}, pkg_map=None, **TARGET)
        backward = packages.select(list(reversed(specs)), phase="install.d", environ={},
                                   pkg_map=None, **TARGET)
        self.assertEqual([("alpha", "c"), ("alpha", "z"), ("zeta", "a"), ("zeta", "b")],
                         [(a.element, a.name) for a in forward])
        self.assertEqual(forward, backward)


class TestCollect(testtools.TestCase):

    def test_specs_and_maps_of_every_element(self) -> None:
        root = Path(self.useFixture(fixtures.TempDir()).path)
        for name, files in {"with-map": {"package-installs.yaml": "curl:\n",
                                         "pkg-map": '{"default": {"curl": "curl-x"}}'},
                            "json-only": {"package-installs.json": '{"jq": null}'},
                            "nothing": {}}.items():
            (root / name).mkdir()
            for fname, text in files.items():
                (root / name / fname).write_text(text)
        elements = [load_element(root / n) for n in ("with-map", "json-only", "nothing")]
        specs, maps = packages.collect(elements)
        self.assertEqual([("with-map", "curl"), ("json-only", "jq")],
                         [(s.element, s.name) for s in specs])
        self.assertEqual(["with-map"], list(maps))
        actions = packages.select(specs, phase="install.d", environ={}, pkg_map=maps, **TARGET)
        self.assertEqual(["jq", "curl-x"], names(actions))  # by element: json-only first


class TestRequireBase(testtools.TestCase):

    def _action(self, element: str, name: str) -> PackageAction:
        return PackageAction(element=element, phase="install.d", name=name, logical=name,
                             uninstall=False, build_only=False)

    def test_packages_without_a_base_name_element_and_packages(self) -> None:
        err = self.assertRaises(InstallError, packages.require_base,
                                [self._action("waagent", "a"), self._action("waagent", "b")],
                                False)
        self.assertEqual("element waagent asks for distro packages a, b: pass --base PATH "
                         "(packages are installed with the target's package manager)",
                         err.message)
        self.assertEqual(26, err.exit_code)

    def test_several_elements_are_all_named(self) -> None:
        err = self.assertRaises(InstallError, packages.require_base,
                                [self._action("zz", "x"), self._action("aa", "y")], False)
        self.assertTrue(err.message.startswith(
            "element aa asks for distro packages y; element zz asks for distro packages x: "),
            err.message)

    def test_with_a_base_or_without_packages_it_passes(self) -> None:
        packages.require_base([self._action("e", "a")], True)  # raises on failure
        packages.require_base([], False)
