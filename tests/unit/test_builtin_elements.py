"""The built-in elements: lint, declarations parsed by the builder's own parsers,
environment.d behaviour, install-type selection and the side-file hook.

Everything here runs without root or network (bash only); the builds
themselves are in tests/functional/test_elements.py.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import fixtures
import testtools

from sysext_builder.config import BuildConfig
from sysext_builder.errors import HookFailedError
from sysext_builder.install import packages, sources
from sysext_builder.model import discovery, graph, phases
from sysext_builder.model.element import PHASES, Element, load_element, read_name_list
from sysext_builder.staging import buildenv, environment
from sysext_builder.staging.overlay import INSIDE
from sysext_builder.staging.workspace import Workspace
from sysext_builder.sysext import units
from tests.base import PACKAGE_DIR

ELEMENTS_DIR = PACKAGE_DIR / "elements"
LIB = PACKAGE_DIR / "lib" / "common-functions.sh"
BUILTIN = ("azure-oem", "chrony-ptp", "hyperv", "oem-common", "openstack-oem", "qemu-oem",
           "simple-init", "waagent")
HOOK_NAME_RE = re.compile(r"^[0-9]+-[a-z0-9]+(-[a-z0-9]+)*$")
TRACE_LINE = 'if [ "${DIB_DEBUG_TRACE:-0}" -gt 0 ]; then set -x; fi'
EXPORT_RE = re.compile(r"^\s*export\s+((?:DIB|SYSEXT_PYTHON)_[A-Za-z0-9_]+)=", re.MULTILINE)
#: tmpfiles.d line types the elements may use
TMPFILES_TYPES = {"d", "D", "L", "L+", "C", "f", "z"}
#: one udev rule assignment or match: KEY[{attr}] OP "value"
UDEV_TERM = re.compile(r'^\s*(?P<key>[A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"[^"]*"\s*$')
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def element_dirs() -> list[Path]:
    return sorted(p for p in ELEMENTS_DIR.iterdir() if p.is_dir()
                  and not p.name.startswith((".", "_")))


def hook_files(element: Path) -> list[Path]:
    """Every hook of the element, install-type directories included."""
    found = []
    for phase in PHASES:
        phase_dir = element / phase
        if not phase_dir.is_dir():
            continue
        for entry in sorted(phase_dir.iterdir()):
            if entry.is_dir() and phase == "install.d":
                found += sorted(entry.iterdir())
            else:
                found.append(entry)
    return found


def static_files(element: Path, pattern: str) -> list[Path]:
    static = element / "static"
    return sorted(p for p in static.glob(pattern) if p.is_file()) if static.is_dir() else []


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file (or drop-in) as {section: {key: [values]}}; raises on junk lines."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise AssertionError(f"line {lineno}: {raw!r} is not KEY=VALUE in a section")
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


class TestLint(testtools.TestCase):
    """The rules every built-in element follows (they are examples for third parties)."""

    def test_the_builtin_set(self) -> None:
        self.assertEqual(sorted(BUILTIN), [p.name for p in element_dirs()])

    def test_readme_documents_every_variable(self) -> None:
        problems = []
        for element in element_dirs():
            readme = element / "README.rst"
            if not readme.is_file():
                problems.append(f"{element.name}: no README.rst")
                continue
            text = readme.read_text()
            title = text.splitlines()[1] if len(text.splitlines()) > 1 else ""
            if title != element.name:
                problems.append(f"{element.name}: README title is {title!r}")
            env_dir = element / "environment.d"
            for path in sorted(env_dir.iterdir()) if env_dir.is_dir() else []:
                for var in sorted(set(EXPORT_RE.findall(path.read_text()))):
                    if var not in text:
                        problems.append(f"{element.name}: README does not mention {var}")
        self.assertEqual([], problems)

    def test_hooks_are_named_executable_bash_and_strict(self) -> None:
        problems = []
        count = 0
        for element in element_dirs():
            for hook in hook_files(element):
                count += 1
                rel = hook.relative_to(ELEMENTS_DIR)
                lines = hook.read_text().splitlines()
                if not HOOK_NAME_RE.match(hook.name):
                    problems.append(f"{rel}: not named NN-name")
                if not hook.is_file() or not os.access(hook, os.X_OK):
                    problems.append(f"{rel}: not an executable file")
                if not lines or lines[0] != "#!/bin/bash":
                    problems.append(f"{rel}: first line is not #!/bin/bash")
                if "set -eu -o pipefail" not in lines:
                    problems.append(f"{rel}: no 'set -eu -o pipefail' line")
                traces = [ln for ln in lines if "DIB_DEBUG_TRACE" in ln]
                if traces and traces != [TRACE_LINE]:
                    problems.append(f"{rel}: unexpected trace line {traces}")
                if "SYSEXT_FUNCTIONS" in hook.read_text() and \
                        'source "$SYSEXT_FUNCTIONS"' not in lines:
                    problems.append(f"{rel}: sources the library some other way")
                done = subprocess.run(["bash", "-n", str(hook)], capture_output=True, text=True,
                                      check=False)
                if done.returncode:
                    problems.append(f"{rel}: bash -n: {done.stderr.strip()}")
        self.assertGreater(count, 8)
        self.assertEqual([], problems)

    def test_environment_files_are_plain_bash_and_not_executable(self) -> None:
        problems = []
        for element in element_dirs():
            env_dir = element / "environment.d"
            for path in sorted(env_dir.iterdir()) if env_dir.is_dir() else []:
                rel = path.relative_to(ELEMENTS_DIR)
                if os.stat(path).st_mode & 0o111:
                    problems.append(f"{rel}: executable (environment files are sourced)")
                if not HOOK_NAME_RE.match(path.name):
                    problems.append(f"{rel}: not named NN-name")
                done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                                      check=False)
                if done.returncode:
                    problems.append(f"{rel}: bash -n: {done.stderr.strip()}")
        self.assertEqual([], problems)

    def test_name_lists_parse_and_deps_are_sorted(self) -> None:
        for element in element_dirs():
            loaded = load_element(element, "built-in")
            self.assertEqual(sorted(loaded.deps), list(loaded.deps), element.name)
            for name in ("element-deps", "element-provides"):
                if (element / name).exists():
                    read_name_list(element / name)

    def test_declarations_parse_with_the_builders_parsers(self) -> None:
        seen = {"units": 0, "package-installs": 0, "pkg-map": 0, "source-repository": 0}
        for element in element_dirs():
            loaded = load_element(element, "built-in")
            if (element / "units").exists():
                seen["units"] += 1
                for decl in units.parse_units(element / "units"):
                    self.assertIn(decl.verb, units.VERBS)
            if loaded.package_installs is not None:
                seen["package-installs"] += 1
                specs = packages.parse_package_installs(loaded.package_installs, element.name)
                self.assertNotEqual([], specs)
                for spec in specs:  # a package manager exists only with --base
                    self.assertIn("SYSEXT_BASE = 1", [str(c) for c in spec.when], str(spec))
            if loaded.pkg_map is not None:
                seen["pkg-map"] += 1
                packages.parse_pkg_map(loaded.pkg_map)
            for path in loaded.source_repositories:
                seen["source-repository"] += 1
                self.assertEqual(1, len(sources.parse(path, element.name)), str(path))
        self.assertEqual({"units": 3, "package-installs": 4, "pkg-map": 1,
                          "source-repository": 2}, seen)

    def test_declared_units_are_shipped(self) -> None:
        for element in element_dirs():
            if not (element / "units").exists():
                continue
            shipped = {p.name for p in static_files(element, "usr/lib/systemd/system/*")}
            for decl in units.parse_units(element / "units"):
                self.assertIn(decl.unit, shipped, f"{element.name}: {decl.source}")

    def test_unit_files_and_drop_ins_are_well_formed(self) -> None:
        checked = 0
        for element in element_dirs():
            candidates = static_files(element, "usr/lib/systemd/system/**/*")
            if (element / "systemd").is_dir():
                candidates += sorted(p for p in (element / "systemd").rglob("*") if p.is_file())
            for path in candidates:
                rel = path.relative_to(ELEMENTS_DIR)
                sections = unit_sections(path.read_text())
                checked += 1
                if path.name.endswith(".conf"):  # drop-in
                    self.assertTrue(set(sections) <= {"Unit", "Service"}, rel)
                    continue
                self.assertIn("Description", sections.get("Unit", {}), str(rel))
                service = sections.get("Service", {})
                for key in ("ExecStart", "ExecStartPre", "ExecStartPost"):
                    for value in service.get(key, []):
                        self.assertTrue(value.lstrip("-").startswith("/"), f"{rel}: {key}")
        self.assertGreaterEqual(checked, 10)

    def test_tmpfiles_lines(self) -> None:
        for element in element_dirs():
            for path in static_files(element, "usr/lib/tmpfiles.d/*.conf"):
                for line in path.read_text().splitlines():
                    if not line.strip() or line.startswith("#"):
                        continue
                    fields = line.split()
                    self.assertIn(fields[0], TMPFILES_TYPES, line)
                    self.assertRegex(fields[1], r"^/(etc|var)/", line)
                    if fields[0].startswith("L"):
                        self.assertTrue(os.path.isfile(
                            element / "static" / fields[6].lstrip("/")), line)

    def test_udev_rules_are_lists_of_terms(self) -> None:
        for element in element_dirs():
            for path in static_files(element, "usr/lib/udev/rules.d/*"):
                self.assertRegex(path.name, r"^[0-9]{2}-[a-z0-9-]+\.rules$")
                labels, gotos = set(), set()
                for line in path.read_text().splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    terms = re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', line)
                    for term in terms:
                        match = UDEV_TERM.match(term)
                        self.assertIsNotNone(match, f"{path.name}: {term!r}")
                        value = term.split('"')[1]
                        if match and match["key"] == "LABEL":
                            labels.add(value)
                        elif match and match["key"] == "GOTO":
                            gotos.add(value)
                self.assertEqual(set(), gotos - labels, f"{path.name}: GOTO without LABEL")

    def test_static_trees_hold_only_usr(self) -> None:
        for element in element_dirs():
            static = element / "static"
            if not static.is_dir():
                continue
            self.assertEqual(["usr"], sorted(os.listdir(static)), element.name)
            for path in static.rglob("*"):
                if not path.is_symlink():
                    self.assertFalse(path.lstat().st_mode & stat.S_IWOTH, path)
                else:  # relative, and staying inside /usr
                    target = os.readlink(path)
                    resolved = os.path.normpath(os.path.join(
                        os.path.dirname(path.relative_to(static)), target))
                    self.assertFalse(target.startswith("/"), path)
                    self.assertTrue(resolved.startswith("usr/"), path)


class _Sourcing(testtools.TestCase):
    """environment.d of a set of built-in elements, sourced as the builder does."""

    def resolve(self, *names: str) -> list[Element]:
        catalog = discovery.index((), {})
        return list(graph.resolve(list(names), catalog).order)

    def source(self, *names: str, **env: str) -> dict[str, str]:
        files = phases.environment_files(self.resolve(*names))
        return environment.source(files, {"PATH": _PATH, **env}, "defaults")


class TestEnvironment(_Sourcing):

    def test_azure_identity_and_defaults(self) -> None:
        env = self.source("azure-oem", "simple-init", SYSEXT_BASE="0")
        self.assertEqual("oem-azure", env["SYSEXT_DEFAULT_NAME"])
        self.assertEqual("flatcar", env["SYSEXT_DEFAULT_OS_ID"])
        self.assertEqual("1.0", env["SYSEXT_DEFAULT_SYSEXT_LEVEL"])
        self.assertEqual("1", env["SYSEXT_RELOAD_MANAGER"])
        self.assertEqual("Microsoft Azure", env["SYSEXT_RELEASE_SYSEXT_NAME"])
        self.assertEqual("https://azure.microsoft.com/", env["SYSEXT_RELEASE_SYSEXT_HOME_URL"])
        self.assertEqual("https://issues.flatcar.org", env["DIB_OEM_BUG_REPORT_URL"])
        self.assertEqual("1", env["DIB_OEM_GRUB_SERIAL"])
        self.assertIn("console=ttyS0,115200n8", env["DIB_OEM_GRUB_CONSOLE"])
        self.assertEqual("package", env["DIB_INSTALLTYPE_waagent"])
        self.assertEqual("pypi", env["DIB_INSTALLTYPE_simple_init"])
        self.assertEqual("pypi", env["DIB_INSTALLTYPE_glean"])
        self.assertEqual("chronyd.service", env["DIB_CHRONY_PTP_SERVICE"])
        self.assertEqual("usr/lib/python3/dist-packages", env["SYSEXT_PYTHON_SITE"])

    def test_user_values_win(self) -> None:
        env = self.source("azure-oem", DIB_OEM_ID="azure-test", DIB_OEM_NAME="Test Cloud",
                          DIB_INSTALLTYPE_waagent="source", DIB_OEM_GRUB_SERIAL="0")
        self.assertEqual("oem-azure-test", env["SYSEXT_DEFAULT_NAME"])
        self.assertEqual("Test Cloud", env["SYSEXT_RELEASE_SYSEXT_NAME"])
        self.assertEqual("source", env["DIB_INSTALLTYPE_waagent"])
        self.assertEqual("0", env["DIB_OEM_GRUB_SERIAL"])

    def test_metadata_only_oems(self) -> None:
        qemu = self.source("qemu-oem")
        self.assertEqual(("oem-qemu", "QEMU", "flatcar.autologin"),
                         (qemu["SYSEXT_DEFAULT_NAME"], qemu["SYSEXT_RELEASE_SYSEXT_NAME"],
                          qemu["DIB_OEM_GRUB_APPEND"]))
        openstack = self.source("openstack-oem")
        self.assertEqual(("oem-openstack", "https://www.openstack.org/"),
                         (openstack["SYSEXT_DEFAULT_NAME"], openstack["DIB_OEM_HOME_URL"]))

    def test_oem_common_alone_names_the_missing_variable(self) -> None:
        error = self.assertRaises(HookFailedError, self.source, "oem-common")
        self.assertIn("oem-common/environment.d/50-oem-common", error.message)
        self.assertIn("DIB_OEM_ID is not set", error.hint or "")
        error = self.assertRaises(HookFailedError, self.source, "oem-common",
                                  DIB_OEM_ID="Bad Id")
        self.assertIn("not an os-release ID", error.hint or "")

    def test_simple_init_install_types(self) -> None:
        for given, expected, glean in (("repo", "repo", "source"), ("source", "pypi", "pypi"),
                                       ("pypi", "pypi", "pypi")):
            env = self.source("simple-init", DIB_INSTALLTYPE_simple_init=given)
            self.assertEqual((expected, glean), (env["DIB_INSTALLTYPE_simple_init"],
                                                 env["DIB_INSTALLTYPE_glean"]), given)
        error = self.assertRaises(HookFailedError, self.source, "simple-init",
                                  DIB_INSTALLTYPE_simple_init="package")
        self.assertIn("is not pypi or repo", error.hint or "")

    def test_chrony_unit_name_follows_the_base(self) -> None:
        self.assertEqual("chrony.service", self.source(
            "chrony-ptp", DISTRO_NAME="debian")["DIB_CHRONY_PTP_SERVICE"])
        self.assertEqual("chronyd.service", self.source(
            "chrony-ptp", DISTRO_NAME="fedora")["DIB_CHRONY_PTP_SERVICE"])


class TestSelection(_Sourcing):
    """What the builder picks with the defaults environment.d exports."""

    def install_hooks(self, *names: str, **env: str) -> list[str]:
        selection = self.source(*names, **env)
        hooks, warnings = phases.scan(self.resolve(*names), "install.d", selection)
        self.assertEqual([], warnings)
        return [h.name for h in hooks]

    def repos(self, *names: str, **env: str) -> list[sources.SourceRepo]:
        selection = self.source(*names, **env)
        return sources.collect(self.resolve(*names), selection)

    def test_default_install_types(self) -> None:
        self.assertEqual(["40-simple-init-glean-pypi", "50-waagent-debian-package",
                          "60-simple-init-units"], self.install_hooks("azure-oem", "simple-init"))
        self.assertEqual([], self.repos("azure-oem", "simple-init"))

    def test_source_and_repo_types_fetch_their_repositories(self) -> None:
        self.assertEqual(["40-simple-init-glean-repo", "50-waagent-from-source",
                          "60-simple-init-units"],
                         self.install_hooks("azure-oem", "simple-init",
                                            DIB_INSTALLTYPE_waagent="source",
                                            DIB_INSTALLTYPE_simple_init="repo"))
        repos = self.repos("azure-oem", "simple-init", DIB_INSTALLTYPE_waagent="source",
                           DIB_INSTALLTYPE_simple_init="repo",
                           DIB_REPOREF_waagent="v9.9.9.9")
        self.assertEqual([("glean", "https://opendev.org/opendev/glean", "1.25.1",
                           "/tmp/simple-init-glean"),
                          ("waagent", "https://github.com/Azure/WALinuxAgent.git", "v9.9.9.9",
                           "/tmp/waagent-source")],
                         [(r.name, r.location, r.ref, r.dest) for r in repos])

    def test_packages_only_with_a_base(self) -> None:
        elements = self.resolve("azure-oem", "simple-init")
        specs, maps = packages.collect(elements)

        def wanted(base: str, distro: str, family: str) -> list[str]:
            env = self.source("azure-oem", "simple-init", SYSEXT_BASE=base)
            return [a.name for a in packages.select(specs, phase="install.d", environ=env,
                                                    arch="x86-64", distro=distro,
                                                    family=family, release="",
                                                    pkg_map=maps)]

        self.assertEqual([], wanted("0", "", ""))
        self.assertEqual(["chrony", "hyperv-daemons", "waagent"],
                         wanted("1", "debian", "debian"))
        self.assertIn("hyper-v", wanted("1", "opensuse-leap", "suse"))


class TestElementInfo(testtools.TestCase):

    def test_azure_oem_and_simple_init_resolve(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ELEMENTS_PATH"}
        done = subprocess.run([sys.executable, "-m", "sysext_builder", "sysext-element-info",
                               "--json", "azure-oem", "simple-init"], capture_output=True,
                              text=True, env=env, check=False, timeout=120)
        self.assertEqual(0, done.returncode, done.stderr)
        doc = json.loads(done.stdout)
        text = json.dumps(doc)
        for name in ("azure-oem", "chrony-ptp", "hyperv", "oem-common", "simple-init",
                     "waagent"):
            self.assertIn(f'"{name}"', text)
        self.assertNotIn("qemu-oem", text)


class _Shell(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def bash(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = {"PATH": _PATH, "SYSEXT_FUNCTIONS": str(LIB), **env}
        return subprocess.run(["bash", "-c", f'set -eu -o pipefail; source "{LIB}"\n{script}'],
                              capture_output=True, text=True, env=full, check=False)


class TestSideFiles(_Shell):
    """oem-common's finalise hook, run directly with the variables the builder passes."""

    HOOK = ELEMENTS_DIR / "oem-common" / "finalise.d" / "80-oem-common-side-files"

    def run_hook(self, **env: str) -> subprocess.CompletedProcess[str]:
        (self.top / "tmp").mkdir(exist_ok=True)
        (self.top / "artifacts").mkdir(exist_ok=True)
        full = {"PATH": _PATH, "SYSEXT_FUNCTIONS": str(LIB), "TMP_BUILD_DIR": str(self.top / "tmp"),
                "SYSEXT_ARTIFACTS_DIR": str(self.top / "artifacts"), "DIB_OEM_ID": "azure",
                "DIB_OEM_NAME": "Microsoft Azure", "DIB_OEM_HOME_URL": "https://azure.microsoft.com/",
                "DIB_OEM_BUG_REPORT_URL": "https://issues.flatcar.org", "DIB_OEM_VERSION": "",
                "DIB_OEM_GRUB_CONSOLE": "console=ttyS0,115200n8 earlyprintk=ttyS0,115200",
                "DIB_OEM_GRUB_APPEND": "", "DIB_OEM_GRUB_SERIAL": "1",
                "DIB_OEM_GRUB_SERIAL_SPEED": "115200", **env}
        return subprocess.run([str(self.HOOK)], capture_output=True, text=True, env=full,
                              check=False)

    def test_oem_release_and_grub_cfg(self) -> None:
        done = self.run_hook(SYSEXT_TARGET_VERSION_ID="3975.2.0", SYSEXT_TARGET_ID="flatcar")
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(sorted(["oem-release", "grub.cfg"]),
                         sorted(os.listdir(self.top / "artifacts")))
        self.assertEqual('ID=azure\nVERSION_ID=3975.2.0\nNAME="Microsoft Azure"\n'
                         'HOME_URL="https://azure.microsoft.com/"\n'
                         'BUG_REPORT_URL="https://issues.flatcar.org"\n',
                         (self.top / "artifacts" / "oem-release").read_text())
        grub = (self.top / "artifacts" / "grub.cfg").read_text()
        self.assertIn('set oem_id="azure"\n', grub)
        self.assertIn('set linux_console="console=ttyS0,115200n8 earlyprintk=ttyS0,115200"\n',
                      grub)
        self.assertIn("serial com0 --speed=115200 --word=8 --parity=no\n", grub)
        self.assertIn("terminal_output serial_com0\n", grub)
        self.assertNotIn("linux_append", grub)

    def test_version_falls_back_to_the_level_and_can_be_set(self) -> None:
        self.assertEqual(0, self.run_hook(SYSEXT_TARGET_SYSEXT_LEVEL="1.0").returncode)
        self.assertIn("VERSION_ID=1.0\n", (self.top / "artifacts/oem-release").read_text())
        self.assertEqual(0, self.run_hook(DIB_OEM_VERSION="2.12.0.4",
                                          SYSEXT_TARGET_VERSION_ID="12").returncode)
        self.assertIn("VERSION_ID=2.12.0.4\n", (self.top / "artifacts/oem-release").read_text())

    def test_serial_off_and_kernel_arguments(self) -> None:
        done = self.run_hook(DIB_OEM_GRUB_SERIAL="0", DIB_OEM_GRUB_APPEND="flatcar.autologin")
        self.assertEqual(0, done.returncode, done.stderr)
        grub = (self.top / "artifacts" / "grub.cfg").read_text()
        self.assertNotIn("serial", grub)
        self.assertIn('set linux_append="flatcar.autologin"\n', grub)

    def test_quotes_are_refused_not_escaped(self) -> None:
        done = self.run_hook(DIB_OEM_NAME='Evil" ; insmod x')
        self.assertNotEqual(0, done.returncode)
        self.assertIn("DIB_OEM_NAME", done.stderr)
        self.assertEqual([], os.listdir(self.top / "artifacts"))


class TestSysextRemove(_Shell):
    """sysext_remove (lib/common-functions.sh), which the trim and tidy hooks use."""

    def tree(self) -> tuple[Path, Path]:
        root, base = self.top / "root", self.top / "base"
        for rel in ("usr/include/added.h", "usr/include/base.h", "usr/lib/debug/x.debug",
                    "usr/lib/python3/t/tests/test_x.py"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("x")
        (base / "usr/include").mkdir(parents=True)
        (base / "usr/include/base.h").write_text("x")
        return root, base

    def test_without_a_base_everything_goes(self) -> None:
        root, _ = self.tree()
        done = self.bash("sysext_remove /usr/include /usr/lib/debug /usr/nothing",
                         TARGET_ROOT=str(root), SYSEXT_BASE="0")
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(["lib"], os.listdir(root / "usr"))
        self.assertEqual(["python3"], os.listdir(root / "usr/lib"))

    def test_with_a_base_only_what_the_build_added(self) -> None:
        root, base = self.tree()
        done = self.bash("sysext_remove /usr/include /usr/lib/debug", TARGET_ROOT=str(root),
                         SYSEXT_BASE="1", SYSEXT_BASE_ROOT=str(base))
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(["base.h"], os.listdir(root / "usr/include"))
        self.assertFalse((root / "usr/lib/debug").exists())

    def test_refusals(self) -> None:
        root, _ = self.tree()
        (root / "usr/escape").symlink_to(self.top / "base")
        for script, words in (("sysext_remove usr/include", "not an absolute path"),
                              ("sysext_remove /usr/../etc", "contains '..'"),
                              ("sysext_remove /usr/escape/usr", "leads out of the image root")):
            done = self.bash(script, TARGET_ROOT=str(root), SYSEXT_BASE="0")
            self.assertNotEqual(0, done.returncode, script)
            self.assertIn(words, done.stderr, script)
        done = self.bash("sysext_remove /usr/include", TARGET_ROOT=str(root), SYSEXT_BASE="1")
        self.assertIn("host-side phases only", done.stderr)
        self.assertTrue((self.top / "base/usr/include/base.h").exists())


class TestBuilderSupport(testtools.TestCase):
    """What the builder gives the elements: target identity, the base tree, and
    compatibility links of a merged-/usr base kept inside /usr."""

    def test_target_variables(self) -> None:
        target = buildenv.Target(Path("out"), "oem-azure", {
            "ID": "flatcar", "SYSEXT_LEVEL": "1.0", "ARCHITECTURE": "x86-64",
            "SYSEXT_NAME": "Microsoft Azure"})
        self.assertEqual({"SYSEXT_TARGET_ID": "flatcar", "SYSEXT_TARGET_SYSEXT_LEVEL": "1.0",
                          "SYSEXT_TARGET_ARCHITECTURE": "x86-64"},
                         buildenv.target_variables(target))

    def test_base_root_only_outside_the_chroot(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        config = BuildConfig(elements=("x",), environ={"PATH": _PATH})
        with Workspace(top) as ws:
            env = buildenv.host_environment(config, ws, ["x"], "x86-64", top / "merged",
                                            base_release={"ID": "debian"},
                                            base_root=top / "base")
            self.assertEqual(str(top / "base"), env["SYSEXT_BASE_ROOT"])
            self.assertEqual("1", env["SYSEXT_BASE"])
            inside = buildenv.chroot_environment(env, INSIDE)
            self.assertNotIn("SYSEXT_BASE_ROOT", inside)
            plain = buildenv.host_environment(config, ws, ["x"], "x86-64", ws.root)
            self.assertNotIn("SYSEXT_BASE_ROOT", plain)

    def test_links_through_the_bases_top_level_links(self) -> None:
        from sysext_builder.staging.overlay import _through_base_links

        base = Path(self.useFixture(fixtures.TempDir()).path)
        (base / "usr/bin").mkdir(parents=True)
        (base / "bin").symlink_to("usr/bin")
        (base / "etc").mkdir()
        (base / "evil").symlink_to("/usr/bin")
        self.assertEqual("/usr/bin/ip", _through_base_links("/bin/ip", str(base)))
        for kept in ("/etc/alternatives/x", "/evil/ip", "../bin/ip", "/bin", "/usr/bin/ip"):
            self.assertEqual(kept, _through_base_links(kept, str(base)))
