"""The built-in elements built for real and proven in a merged root.

* ``sysext-create azure-oem simple-init -o DIR/`` from a fresh machine (no
  base): the image, its manifest and the side files beside it, and what the
  image holds; systemd-sysext accepts it on a Flatcar root only.
* The same build on the Debian base tree: merged with the real systemd-sysext
  into a copy of the base, then, chrooted into the merged root: the agent
  prints its version, glean runs and configures fixtures offline (a config
  drive with a static address; without one, DHCP), every unit file passes
  ``systemd-analyze verify``, every ``.wants`` link and ``Upholds=`` names an
  existing unit, and the image's tmpfiles lines apply.  A mismatching
  os-release is refused; a base without python3 stops the build clearly.
* Install-type and shape variants (no base).

Builds need the network (PyPI and the Debian mirror); merging and the base
need root.  Builds are shared per class; all builds share one cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

import fixtures
import testtools

from sysext_builder.sysext import osrelease, verify
from tests.base import pip_env
from tests.functional import base
from tests.functional.debian_base import DebianBaseTree, base_tarball, remove_tree

GLEAN_FIXTURES = base.FIXTURES / "glean"
UNIT_DIR = "usr/lib/systemd/system"
FLATCAR = {"ID": "flatcar", "VERSION_ID": "4152.2.0", "SYSEXT_LEVEL": "1.0"}
STATIC_ADDRESS = "Address=192.0.2.10/24"

_scratch: Path | None = None
_network: str | None | bool = False  # False: not probed yet; None: reachable


def scratch() -> Path:
    """One directory for the whole module: the shared build cache and work dirs."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="sysext-elements-test-"))
    return _scratch


def tearDownModule() -> None:  # noqa: N802 (unittest's name)
    if _scratch is not None:
        remove_tree(_scratch)


def _reachable(url: str) -> str | None:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15).close()
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None


def require_network() -> None:
    """Skip unless PyPI and the Debian mirror the build host's apt uses answer."""
    global _network
    if _network is False:
        problem = _reachable("https://pypi.org/simple/glean/")
        apt = shutil.which("apt-get")
        if problem is None and apt is not None:
            done = subprocess.run([apt, "download", "--print-uris", "waagent"],
                                  capture_output=True, text=True, check=False)
            uris = [w.strip("'") for w in done.stdout.split() if w.startswith("'http")]
            if uris:
                problem = _reachable(uris[0])
        _network = problem
    base.require("network", not _network, f"the element builds need the network: {_network}")


def create(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    work = scratch() / "work"
    work.mkdir(exist_ok=True)
    return base.run("sysext-create", "--cache-dir", str(scratch() / "cache"),
                    "--workdir", str(work), *args, env=env, timeout=900)


def built(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise AssertionError(f"sysext-create failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def release_of(tree: Path, name: str) -> dict[str, str]:
    return osrelease.read_file(tree / f"usr/lib/extension-release.d/extension-release.{name}")


def unit_files(tree: Path) -> list[str]:
    """Unit names to verify: every unit file of the image, templates instantiated."""
    names = []
    for path in sorted((tree / UNIT_DIR).iterdir()):
        if path.is_dir() or path.suffix not in (".service", ".timer", ".socket", ".target"):
            continue
        names.append(path.name.replace("@.", "@test0.") if "@." in path.name else path.name)
    return names


def wants_links(tree: Path) -> list[str]:
    return sorted(str(p.relative_to(tree)) for p in (tree / UNIT_DIR).glob("*.wants/*"))


def upheld(tree: Path) -> list[str]:
    found = []
    for conf in sorted((tree / UNIT_DIR).glob("*.target.d/*.conf")):
        for line in conf.read_text().splitlines():
            if line.startswith("Upholds="):
                found += line.split("=", 1)[1].split()
    return found


class AzureTreeChecks:
    """What every build of azure-oem simple-init holds (with or without base)."""

    tree: ClassVar[Path]

    def check_common_contents(self, case: testtools.TestCase) -> None:
        tree = self.tree
        for rel in ("usr/sbin/waagent", "usr/bin/glean", "usr/share/waagent/waagent.conf",
                    "usr/share/oem-azure/chrony.conf", "usr/lib/tmpfiles.d/waagent.conf",
                    "usr/lib/tmpfiles.d/chrony-ptp.conf",
                    "usr/lib/udev/rules.d/66-azure-storage.rules",
                    "usr/lib/udev/rules.d/99-azure-product-uuid.rules",
                    "usr/lib/udev/rules.d/99-simple-init-glean.rules",
                    "usr/libexec/simple-init/glean-early",
                    f"{UNIT_DIR}/glean@.service", f"{UNIT_DIR}/glean-early.service",
                    f"{UNIT_DIR}/hv-kvp-daemon.service", f"{UNIT_DIR}/hv-vss-daemon.service",
                    f"{UNIT_DIR}/chronyd.service.d/10-chrony-ptp.conf"):
            case.assertTrue((tree / rel).is_file(), rel)
        case.assertEqual("true", os.readlink(tree / "usr/bin/eject"))
        service = (tree / UNIT_DIR / "waagent.service").read_text()
        for line in ("Type=simple", "ExecStart=/usr/sbin/waagent -daemon", "Restart=always"):
            case.assertIn(line + "\n", service)
        case.assertIn("network-online.target sshd-keygen.service", service)
        case.assertEqual("../waagent.service",
                         os.readlink(tree / UNIT_DIR / "multi-user.target.wants/waagent.service"))
        case.assertIn("waagent.service", upheld(tree))
        case.assertIn("L /etc/waagent.conf - - - - /usr/share/waagent/waagent.conf",
                      (tree / "usr/lib/tmpfiles.d/waagent.conf").read_text())
        case.assertIn("refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0",
                      (tree / "usr/share/oem-azure/chrony.conf").read_text())
        glean_unit = (tree / UNIT_DIR / "glean@.service").read_text()
        case.assertIn("--distro networkd --interface %I", glean_unit)
        case.assertIn("Before=network-pre.target systemd-networkd.service", glean_unit)
        case.assertIn('ENV{SYSTEMD_WANTS}+="glean@$name.service"',
                      (tree / "usr/lib/udev/rules.d/99-simple-init-glean.rules").read_text())
        # Only /usr, and trimmed.
        case.assertEqual(["usr"], os.listdir(tree))
        for rel in ("usr/include", "usr/lib/debug", "usr/bin/glean-install",
                    "usr/lib/python3/dist-packages/glean/tests",
                    f"{UNIT_DIR}/walinuxagent.service"):
            case.assertFalse(os.path.lexists(tree / rel), rel)


class TestFreshMachine(testtools.TestCase, AzureTreeChecks):
    """``sysext-create azure-oem simple-init -o DIR/`` without a base."""

    out: ClassVar[Path]
    proc: ClassVar[subprocess.CompletedProcess[str]]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require_network()
        base.require_tool("mksquashfs", "squashfs-tools")
        cls.out = scratch() / "fresh"
        cls.proc = create("azure-oem", "simple-init", "-t", "squashfs,directory",
                          "-o", f"{cls.out}/")
        built(cls.proc)
        cls.tree = cls.out / "oem-azure"

    def test_outputs_beside_the_image(self) -> None:
        self.assertEqual(["grub.cfg", "oem-azure", "oem-azure.manifest.json", "oem-azure.raw",
                          "oem-release"], sorted(os.listdir(self.out)))
        doc = json.loads((self.out / "oem-azure.manifest.json").read_text())
        self.assertEqual(["grub.cfg", "oem-release"], sorted(doc["artifacts"]))
        self.assertEqual(["glean"], [p["name"] for p in doc["python"]])
        paths = {f["path"] for f in doc["files"]}
        self.assertFalse([p for p in paths if p.endswith(("oem-release", "grub.cfg"))])

    def test_extension_release(self) -> None:
        fields = release_of(self.tree, "oem-azure")
        self.assertIn(fields.pop("ARCHITECTURE"), ("x86-64", "arm64"))
        self.assertEqual({"ID": "flatcar", "SYSEXT_LEVEL": "1.0",
                          "EXTENSION_RELOAD_MANAGER": "1", "SYSEXT_NAME": "Microsoft Azure",
                          "SYSEXT_HOME_URL": "https://azure.microsoft.com/",
                          "SYSEXT_BUG_REPORT_URL": "https://issues.flatcar.org"}, fields)

    def test_side_files(self) -> None:
        self.assertEqual({"ID": "azure", "VERSION_ID": "1.0", "NAME": "Microsoft Azure",
                          "HOME_URL": "https://azure.microsoft.com/",
                          "BUG_REPORT_URL": "https://issues.flatcar.org"},
                         osrelease.read_file(self.out / "oem-release"))
        grub = (self.out / "grub.cfg").read_text()
        self.assertIn('set oem_id="azure"\n', grub)
        self.assertIn("console=ttyS0,115200n8", grub)
        self.assertIn("serial com0 --speed=115200", grub)

    def test_contents(self) -> None:
        self.check_common_contents(self)
        # Without a base the agent is Debian's package, unpacked; chronyd is the
        # target OS's, enabled by a shipped link.
        self.assertTrue((self.tree / "usr/lib/python3/dist-packages/azurelinuxagent").is_dir())
        self.assertTrue((self.tree / "usr/lib/python3/dist-packages/distro").is_dir())
        self.assertEqual("../chronyd.service", os.readlink(
            self.tree / UNIT_DIR / "multi-user.target.wants/chronyd.service"))
        self.assertFalse((self.tree / UNIT_DIR / "chronyd.service").exists())
        self.assertIn("waagent: unpacking waagent", self.proc.stderr)

    def test_systemd_sysext_accepts_flatcar_only(self) -> None:
        base.require_root("merging with systemd-sysext")
        image = self.out / "oem-azure.raw"
        accepted = verify.merge(image, FLATCAR)
        self.assertTrue(accepted.accepted, "\n".join(accepted.log[-20:]))
        self.assertIn("usr/sbin/waagent", accepted.appeared)
        refused = verify.merge(image, {"ID": "debian", "VERSION_ID": "12"})
        self.assertFalse(refused.accepted)
        self.assertNotIn("usr/sbin/waagent", refused.appeared)


class TestVariants(testtools.TestCase):
    """Install types and unit shapes, built without a base into directories."""

    def setUp(self) -> None:
        super().setUp()
        require_network()
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def build(self, *elements: str, name: str, env: dict[str, str] | None = None,
              identity: bool = True) -> Path:
        args = ["--os-id", "flatcar", "--sysext-level", "1.0"] if identity else []
        proc = create(*elements, *args, "-t", "directory", "-o", f"{self.out}/{name}", env=env)
        built(proc)
        return self.out / name

    def git_repo(self, source: Path, branch: str) -> Path:
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
        for args in (["init", "-q", "-b", branch], ["add", "-A"],
                     ["commit", "-q", "-m", "stand-in"]):
            subprocess.run([*git, "-C", str(source), *args], check=True, capture_output=True)
        return source

    def test_networkmanager_shape_without_dhcp_fallback(self) -> None:
        tree = self.build("simple-init", name="nm", env={
            "DIB_SIMPLE_INIT_NETWORKMANAGER": "1", "DIB_SIMPLE_INIT_NO_DHCP_FALLBACK": "1"})
        unit = (tree / UNIT_DIR / "glean@.service").read_text()
        self.assertIn("ExecStart=/usr/bin/glean --use-nm --interface %I $GLEAN_EXTRA_ARGS",
                      unit)
        self.assertIn("Before=network-pre.target NetworkManager.service", unit)
        self.assertTrue((tree / UNIT_DIR / "NetworkManager.service.d/"
                         "10-simple-init-glean.conf").is_file())
        self.assertIn("Environment=GLEAN_EXTRA_ARGS=--no-dhcp-fallback", (
            tree / UNIT_DIR / "glean@.service.d/10-simple-init-no-dhcp-fallback.conf"
        ).read_text())
        self.assertEqual("../glean-early.service", os.readlink(
            tree / UNIT_DIR / "multi-user.target.wants/glean-early.service"))

    def test_glean_from_a_git_checkout(self) -> None:
        sdist = self.out / "sdist"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary", ":all:", "glean==1.25.1", "-d", str(sdist)],
                       check=True, capture_output=True, timeout=300, env=pip_env())
        repo = self.out / "glean-repo"
        repo.mkdir()
        archive = next(sdist.glob("glean-*.tar.gz"))
        subprocess.run(["tar", "xzf", str(archive), "-C", str(repo), "--strip-components=1"],
                       check=True)
        self.git_repo(repo, "under-test")
        tree = self.build("simple-init", name="repo", env={
            "DIB_INSTALLTYPE_simple_init": "repo", "DIB_REPOLOCATION_glean": str(repo),
            "DIB_REPOREF_glean": "under-test"})
        self.assertTrue((tree / "usr/bin/glean").is_file())
        self.assertTrue((tree / "usr/lib/python3/dist-packages/glean-1.25.1.dist-info").is_dir())
        self.assertEqual(["usr"], os.listdir(tree), "the checkout must not stay in the image")
        doc = json.loads((self.out / "repo.manifest.json").read_text())
        self.assertEqual([str(repo)], [s["location"] for s in doc["sources"]])

    def test_waagent_from_a_source_repository(self) -> None:
        # The network here does not reach GitHub: a stand-in repository holding
        # the agent's Python package (from Debian's package) and a setup.py
        # with a data file, as upstream's, proves the source install type.
        debs = self.out / "debs"
        debs.mkdir()
        subprocess.run(["apt-get", "-q", "download", "waagent"], cwd=debs, check=True,
                       capture_output=True, timeout=300)
        unpacked = self.out / "unpacked"
        subprocess.run(["dpkg-deb", "-x", str(next(debs.glob("*.deb"))), str(unpacked)],
                       check=True)
        repo = self.out / "wala-repo"
        (repo / "config").mkdir(parents=True)
        shutil.copytree(unpacked / "usr/lib/python3/dist-packages/azurelinuxagent",
                        repo / "azurelinuxagent")
        shutil.copy(unpacked / "etc/waagent.conf", repo / "config/waagent.conf")
        (repo / "setup.py").write_text(
            "from setuptools import find_packages, setup\n"
            "setup(name='WALinuxAgent', version='2.7.3.0', packages=find_packages(),\n"
            "      install_requires=['distro'],\n"
            "      data_files=[('/etc', ['config/waagent.conf'])])\n")
        self.git_repo(repo, "stand-in")
        tree = self.build("waagent", name="wala", env={
            "DIB_INSTALLTYPE_waagent": "source", "DIB_REPOLOCATION_waagent": str(repo),
            "DIB_REPOREF_waagent": "stand-in"})
        site = tree / "usr/lib/python3/dist-packages"
        self.assertTrue((site / "azurelinuxagent/agent.py").is_file())
        self.assertFalse((site / "etc").exists(), "data files of the wheel")
        self.assertEqual(["usr"], os.listdir(tree))
        done = subprocess.run([sys.executable, str(tree / "usr/sbin/waagent"), "--version"],
                              capture_output=True, text=True, env={**os.environ,
                                                                   "PYTHONPATH": str(site)},
                              check=False)
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertIn("WALinuxAgent-2.7.3.0", done.stdout)

    def test_metadata_only_oem(self) -> None:
        tree = self.build("qemu-oem", name="", identity=False)
        self.assertEqual(["grub.cfg", "oem-qemu", "oem-qemu.manifest.json", "oem-release"],
                         sorted(os.listdir(tree)))
        files = sorted(str(p.relative_to(tree / "oem-qemu"))
                       for p in (tree / "oem-qemu").rglob("*") if not p.is_dir())
        self.assertEqual(["usr/lib/extension-release.d/extension-release.oem-qemu"], files)
        self.assertEqual("QEMU", release_of(tree / "oem-qemu", "oem-qemu")["SYSEXT_NAME"])
        self.assertIn('set linux_append="flatcar.autologin"', (tree / "grub.cfg").read_text())


class TestOnDebianBase(testtools.TestCase, AzureTreeChecks):
    """The same build on the Debian base tree, merged into a copy of it."""

    out: ClassVar[Path]
    proc: ClassVar[subprocess.CompletedProcess[str]]
    merged: ClassVar[verify.MergeResult]
    commands: ClassVar[dict[str, int]]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        base.require_root("building against --base")
        require_network()
        base.require_tool("mksquashfs", "squashfs-tools")
        base.require_tool("systemd-sysext", "systemd")
        tarball = base_tarball()
        cls.out = scratch() / "on-base"
        cls.proc = create("azure-oem", "simple-init", "--base", str(tarball),
                          "-t", "squashfs,directory", "-o", f"{cls.out}/")
        built(cls.proc)
        cls.tree = cls.out / "oem-azure"
        root_fixture = DebianBaseTree(scratch())
        root_fixture.setUp()
        cls.addClassCleanup(root_fixture.cleanUp)
        cls.merge(root_fixture.path)

    @classmethod
    def merge(cls, root: Path) -> None:
        for name, parts in (("static", ("nic", "config-drive")), ("dhcp", ("nic",))):
            for part in parts:
                shutil.copytree(GLEAN_FIXTURES / part, root / "srv" / f"glean-{name}",
                                dirs_exist_ok=True)
        tmpfiles = " ".join(f"/usr/lib/tmpfiles.d/{p.name}"
                            for p in sorted((cls.tree / "usr/lib/tmpfiles.d").iterdir()))
        links = " ".join(f"/{rel}" for rel in wants_links(cls.tree))
        upheld_units = " ".join(f"/{UNIT_DIR}/{u}" for u in upheld(cls.tree))
        commands = {
            "version": "waagent --version",
            "glean-help": "glean --help",
            "verify": "systemd-analyze verify --man=no " + " ".join(unit_files(cls.tree)),
            "links": f"for f in {links} {upheld_units}; do test -f $f || echo missing $f; done",
            "tmpfiles": f"systemd-tmpfiles --create --root=/tmp/tf-fresh {tmpfiles} && "
                        "readlink /tmp/tf-fresh/etc/waagent.conf "
                        "/tmp/tf-fresh/etc/chrony/chrony.conf && "
                        "stat -c %a /tmp/tf-fresh/var/lib/waagent",
            "tmpfiles-admin": "mkdir -p /tmp/tf-admin/etc && echo mine > "
                              "/tmp/tf-admin/etc/waagent.conf && "
                              f"systemd-tmpfiles --create --root=/tmp/tf-admin {tmpfiles} && "
                              "cat /tmp/tf-admin/etc/waagent.conf",
            "glean-static": "glean --root /srv/glean-static --noop --distro networkd",
            "glean-dhcp": "glean --root /srv/glean-dhcp --noop --distro networkd",
            "glean-no-dhcp": "glean --root /srv/glean-dhcp --noop --distro networkd "
                             "--no-dhcp-fallback",
        }
        cls.commands = {name: i for i, name in enumerate(commands)}
        cls.merged = verify.merge_into(cls.out / "oem-azure.raw", root, list(commands.values()))

    def command(self, name: str) -> str:
        self.assertTrue(self.merged.accepted, "\n".join(self.merged.log[-20:]))
        code, output = self.merged.commands[self.commands[name]]
        self.assertEqual(0, code, f"{name}:\n{output}")
        return output

    def test_identity_is_the_bases(self) -> None:
        fields = release_of(self.tree, "oem-azure")
        self.assertEqual(("debian", "12", "1", "Microsoft Azure"),
                         (fields["ID"], fields["VERSION_ID"], fields["EXTENSION_RELOAD_MANAGER"],
                          fields["SYSEXT_NAME"]))
        self.assertIn("VERSION_ID=12\n", (self.out / "oem-release").read_text())

    def test_contents_from_the_bases_packages(self) -> None:
        self.check_common_contents(self)
        doc = json.loads((self.out / "oem-azure.manifest.json").read_text())
        added = {p["name"] for p in doc["packages"]}
        self.assertTrue({"waagent", "hyperv-daemons", "chrony"} <= added, added)
        self.assertNotIn("python3", added, "python3 is in the base already")
        for rel in ("usr/sbin/hv_kvp_daemon", "usr/sbin/chronyd",
                    f"{UNIT_DIR}/chrony.service"):
            self.assertTrue((self.tree / rel).exists(), rel)
        self.assertEqual("../chrony.service", os.readlink(
            self.tree / UNIT_DIR / "multi-user.target.wants/chrony.service"))
        self.assertEqual("chrony.service", os.readlink(self.tree / UNIT_DIR / "chronyd.service"))
        # Our units replaced the package's of the same name.
        self.assertIn("ConditionVirtualization=microsoft",
                      (self.tree / UNIT_DIR / "hv-kvp-daemon.service").read_text())

    def test_merges_and_the_agent_prints_its_version(self) -> None:
        self.assertIn("usr/sbin/waagent", self.merged.appeared)
        self.assertIn("WALinuxAgent-2.7.3.0", self.command("version"))

    def test_glean_runs(self) -> None:
        self.assertIn("--no-dhcp-fallback", self.command("glean-help"))

    def test_every_unit_file_verifies(self) -> None:
        self.assertIn("waagent.service", unit_files(self.tree))
        self.assertIn("glean@test0.service", unit_files(self.tree))
        self.assertEqual("", self.command("verify").strip())

    def test_wants_links_and_upholds_name_existing_units(self) -> None:
        self.assertIn(f"{UNIT_DIR}/multi-user.target.wants/waagent.service",
                      wants_links(self.tree))
        # waagent by its upholds declaration, the activation unit by sysinit.target
        self.assertEqual(["oem-azure-activate.service", "waagent.service"],
                         sorted(upheld(self.tree)))
        self.assertEqual("", self.command("links").strip())

    def test_tmpfiles_apply_and_keep_the_admins_config(self) -> None:
        self.assertEqual("/usr/share/waagent/waagent.conf\n"
                         "/usr/share/oem-azure/chrony.conf\n700\n", self.command("tmpfiles"))
        self.assertEqual("mine\n", self.command("tmpfiles-admin"))

    def test_glean_configures_the_static_address_offline(self) -> None:
        output = self.command("glean-static")
        network = output.split("### Write /etc/systemd/network/eth0.network\n", 1)[1]
        self.assertIn("MACAddress=52:54:00:12:34:56", network)
        self.assertIn(STATIC_ADDRESS, network)
        self.assertIn("Gateway=192.0.2.1", network)
        self.assertNotIn("DHCP=", network)

    def test_glean_falls_back_to_dhcp_without_config_drive(self) -> None:
        output = self.command("glean-dhcp")
        network = output.split("### Write /etc/systemd/network/eth0.network\n", 1)[1]
        self.assertIn("DHCP=ipv4", network)
        self.assertNotIn(STATIC_ADDRESS, output)
        self.assertNotIn("eth0.network", self.command("glean-no-dhcp"))

    def test_mismatching_os_release_is_refused(self) -> None:
        image = self.out / "oem-azure.raw"
        for os_release in ({"ID": "debian", "VERSION_ID": "11"}, FLATCAR):
            result = verify.merge(image, os_release)
            self.assertFalse(result.accepted, os_release)
            self.assertEqual((), result.appeared)

    def test_base_with_a_broken_python3_stops_the_build_clearly(self) -> None:
        """python3's files gone, its package still installed: apt installs nothing,
        and the check after package-installs says so (a base without the package
        gets python3 in the image: azure-oem/boot)."""
        root = self.useFixture(DebianBaseTree(scratch())).path
        for path in [*root.glob("usr/bin/python3*"), *root.glob("usr/lib/python3*")]:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        proc = create("simple-init", "--base", str(root), "-t", "directory",
                      "-o", f"{self.useFixture(fixtures.TempDir()).path}/x")
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("simple-init: glean needs python3", proc.stderr)
        self.assertIn("has none usable after installing python3", proc.stderr)


class TestElementTestCases(testtools.TestCase):
    """The DIB-style cases shipped in the elements' test-elements/ (no network)."""

    def test_oem_cases_pass(self) -> None:
        proc = base.run("sysext-test-elements", "--cache-dir", str(scratch() / "cache"),
                        "oem-common", "qemu-oem", timeout=600)
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr[-3000:])
        self.assertIn("PASS oem-common/example-oem", proc.stdout)
        self.assertIn("PASS qemu-oem/metadata-only", proc.stdout)
