"""diskimage-builder's own elements, unmodified, built on a real Debian 12 base.

The elements come from the ``diskimage-builder`` package (a test dependency),
found with ``--element-path``; each test asserts on what the image holds.
glean's source repository (opendev.org, not reachable from CI) is a local git
repository made from its PyPI sdist, named with ``DIB_REPOLOCATION_glean`` as
a DIB user behind a mirror would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fixtures
import testtools

from tests.functional import base, test_boot
from tests.functional.test_elements import require_network

GLEAN_VERSION = "1.25.1"
BOOT_CASES = base.FIXTURES / "elements" / "dib-boot"


def dib_elements() -> Path:
    import diskimage_builder

    return Path(diskimage_builder.__file__).parent / "elements"


def _fixture(top: Path, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = top / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if "/" in rel and rel.split("/")[0].endswith(".d") or rel.startswith("bin/"):
            path.chmod(0o755)


class DibCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        from tests.functional.debian_base import base_tarball

        base.require_root("building DIB's elements against --base")
        self.tarball = base_tarball()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.mine = self.top / "elements"

    def build(self, *elements: str, env: dict[str, str] | None = None) -> Path:
        out = self.top / "out" / "img"
        proc = base.run("sysext-create", "--element-path", str(self.mine), "--element-path",
                        str(dib_elements()), "--base", str(self.tarball), "-t", "directory",
                        "-o", str(out), "--cache-dir", str(self.top / "cache"),
                        "--workdir", str(self.top / "work"), *elements, env=env, timeout=900)
        self.assertEqual(0, proc.returncode, proc.stderr[-4000:])
        self.stderr = proc.stderr
        return out

    def assert_link(self, out: Path, rel: str, target: str) -> None:
        self.assertEqual(target, os.readlink(out / rel), rel)


class TestDibElements(DibCase):
    """Eight of DIB's elements (and one install-bin user) in one image."""

    def test_content(self) -> None:
        _fixture(self.mine, "my-tools", {
            "element-deps": "install-bin\n",
            "bin/hello-tool": "#!/bin/sh\necho hello\n",
            "README.rst": "Ships a tool through DIB's install-bin.\n"})
        _fixture(self.mine, "has-cloud-init", {  # cloud-init-datasources writes only then
            "pre-install.d/10-cloud-dir": "#!/bin/sh\nmkdir -p /etc/cloud/cloud.cfg.d\n",
            "README.rst": "Stands in for an installed cloud-init.\n"})
        _fixture(self.mine, "greets", {  # a hook calling install-packages, as DIB's do
            "install.d/20-greeter": "#!/bin/sh\nset -eu\ninstall-packages -m greets greeter\n"
                                    "test -x /usr/bin/hello\n",
            "pkg-map": '{"family": {"debian": {"greeter": "hello"}}}\n',
            "package-installs.yaml": "nano:\n",  # registers Debian alternatives
            "README.rst": "Installs GNU hello through install-packages and pkg-map.\n"})
        _fixture(self.mine, "hands-over", {  # devuser's idiom: extra-data.d leaves, install.d takes
            "extra-data.d/10-leave": "#!/bin/sh\necho from-the-host > \"$TMP_HOOKS_PATH/note\"\n",
            "install.d/10-take": "#!/bin/sh\nset -eu\ntest \"$TMP_HOOKS_PATH\" = /tmp/in_target.d\n"
                                 "mkdir -p /usr/share/hands-over\n"
                                 "cp \"$TMP_HOOKS_PATH/note\" /usr/share/hands-over/\n",
            "README.rst": "Hands a file from the host's hooks to the chroot's.\n"})
        require_network()
        out = self.build("dhcp-all-interfaces", "growroot", "runtime-ssh-host-keys",
                         "openssh-server", "journal-to-console", "modprobe",
                         "cloud-init-datasources", "has-cloud-init", "my-tools", "greets",
                         "hands-over",
                         env={"DIB_MODPROBE_BLACKLIST": "floppy pcspkr",
                              "DIB_CLOUD_INIT_DATASOURCES": "ConfigDrive, OpenStack"})
        units = "usr/lib/systemd/system"
        # install-bin: $(dirname $0)/../bin is every element's bin/
        self.assertEqual("#!/bin/sh\necho hello\n", (out / "usr/local/bin/hello-tool").read_text())
        # dib-init-system copied ../init-scripts/systemd/; systemctl enable became .wants
        for unit in ("growroot.service", "ssh-keygen.service"):
            self.assertTrue((out / units / unit).is_file(), unit)
        self.assert_link(out, f"{units}/multi-user.target.wants/growroot.service",
                         "../growroot.service")
        self.assertTrue((out / "usr/local/sbin/growroot").is_file())
        self.assertTrue((out / units / "dhcp-interface@.service").is_file())
        self.assertTrue((out / "usr/local/sbin/dhcp-all-interfaces.sh").is_file())
        self.assertTrue((out / "usr/sbin/sshd").is_file())
        # /etc files with a /usr home are there; others lowered; no host key shipped
        self.assertEqual("blacklist floppy\nblacklist pcspkr\n",
                         (out / "usr/lib/modprobe.d/blacklist.conf").read_text())
        self.assertIn("ForwardToConsole=true",
                      (out / "usr/lib/systemd/journald.conf.d/log-to-console.conf").read_text())
        cfg = out / "usr/share/factory/etc/cloud/cloud.cfg.d/91-dib-cloud-init-datasources.cfg"
        self.assertIn("datasource_list: [  ConfigDrive, OpenStack, None ]", cfg.read_text())
        tmpfiles = (out / "usr/lib/tmpfiles.d/img-etc.conf").read_text()
        self.assertIn("C /etc/cloud/cloud.cfg.d/91-dib-cloud-init-datasources.cfg", tmpfiles)
        self.assertNotIn("ssh_host_", tmpfiles)
        self.assertEqual([], sorted(str(p) for p in out.rglob("ssh_host_*")))
        self.assertIn("EXTENSION_RELOAD_MANAGER=1",
                      (out / "usr/lib/extension-release.d/extension-release.img").read_text())
        self.assertFalse((out / "etc").exists())
        # TMP_HOOKS_PATH is one directory for the host's and the chroot's hooks
        self.assertEqual("from-the-host\n",
                         (out / "usr/share/hands-over/note").read_text())
        # Debian's alternatives: the link into /etc is kept, /etc/alternatives made at boot
        self.assert_link(out, "usr/bin/editor", "/etc/alternatives/editor")
        self.assertIn("L /etc/alternatives/editor - - - - /bin/nano", tmpfiles)
        # install-packages -m mapped greeter to hello, installed at once; the manifest has it
        self.assertTrue((out / "usr/bin/hello").is_file())
        manifest = json.loads((out.parent / "img.manifest.json").read_text())
        self.assertIn("hello", [p["name"] for p in manifest["packages"]])

    def test_install_packages_refuses_to_upgrade_the_os_or_run_on_the_host(self) -> None:
        for phase, args, said in (
                ("install.d", "-u", "upgrading the OS's packages is not part of a system "
                                    "extension"),
                ("extra-data.d", "hello", "runs in the chrooted phases")):
            _fixture(self.mine, "bad", {f"{phase}/20-x": f"#!/bin/sh\ninstall-packages {args}\n",
                                        "README.rst": "x\n"})
            proc = base.run("sysext-create", "--element-path", str(self.mine), "--base",
                            str(self.tarball), "-t", "directory", "-o", f"{self.top}/o/img",
                            "--cache-dir", str(self.top / "cache"), "bad", timeout=600)
            self.assertEqual(20, proc.returncode, proc.stderr[-2000:])
            self.assertIn(said, proc.stderr)
            self.assertFalse((self.top / "o/img").exists())
            (self.mine / "bad" / phase / "20-x").unlink()


def glean_repository(top: Path) -> Path:
    """A git repository of glean's released source (its PyPI sdist), for
    ``DIB_REPOLOCATION_glean``: opendev.org is out of CI's reach."""
    sdist = top / "sdist"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                    ":all:", "-d", str(sdist), f"glean=={GLEAN_VERSION}"],
                   check=True, capture_output=True, timeout=300)
    repo = top / "glean"
    repo.mkdir()
    (archive,) = sdist.iterdir()
    base.run_tool("tar", "-xzf", str(archive), "-C", str(repo), "--strip-components=1")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    base.run_tool(*git, "init", "-q")
    base.run_tool(*git, "add", "-A")
    base.run_tool(*git, "commit", "-qm", f"glean {GLEAN_VERSION}")
    return repo


class TestDibSimpleInit(DibCase):
    """DIB's simple-init (glean) as DIB builds it: a venv in /usr/glean, its units."""

    def test_content(self) -> None:
        require_network()
        base.require_tool("git", "git")
        repo = glean_repository(self.top)
        out = self.build("simple-init", env={"DIB_REPOLOCATION_glean": str(repo)})
        self.assertIn("overrides", self.stderr)  # DIB's simple-init, not the built-in one
        self.assertTrue(os.access(out / "usr/glean/bin/glean", os.X_OK))
        self.assert_link(out, "usr/local/bin/glean", "/usr/glean/bin/glean")
        units = out / "usr/lib/systemd/system"
        self.assertTrue((units / "glean@.service").is_file())
        self.assert_link(out, "usr/lib/systemd/system/multi-user.target.wants/"
                         "glean-early.service", "../glean-early.service")
        rules = list((out / "usr/lib/udev/rules.d").glob("*glean*"))
        self.assertEqual(1, len(rules), rules)


class TestDibSimpleInitBooted(test_boot.BootCase):
    """DIB's simple-init merged at boot on Debian 13: glean applies the config drive's
    address (``tests/fixtures/elements/dib-boot/dib-simple-init/test-elements/boot``)."""

    release, systemd = "trixie", "257"

    def test_glean_applies_the_address(self) -> None:
        base.require_tool("git", "git")
        top = Path(self.useFixture(fixtures.TempDir()).path)
        output = self.boot("dib-simple-init/boot", "--element-path", str(BOOT_CASES),
                           "--element-path", str(dib_elements()),
                           env={"DIB_REPOLOCATION_glean": str(glean_repository(top))})
        self.assertIn("2 of 2 assertions held", output)

