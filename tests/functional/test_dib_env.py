"""The DIB variables a real base-less ``sysext-create`` hands its hooks."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import fixtures
import testtools

from tests.functional import base

_SEEN = ("TARGET_ROOT", "TMP_MOUNT_PATH", "ARCH", "SYSEXT_ARCH", "DIB_INIT_SYSTEM",
         "DIB_PYTHON_VERSION", "DIB_PYTHON", "DIB_PYTHON_EXEC", "DIB_IMAGE_CACHE",
         "DIB_DEFAULT_INSTALLTYPE", "ELEMENTS_PATH", "IMAGE_NAME", "IMAGE_ELEMENT",
         "DIB_ARGS", "DIB_USER_SETTING")

_HOOK = """#!/bin/bash
set -eu -o pipefail
out="$TMP_MOUNT_PATH/usr/share/dib-env"
mkdir -p "$out"
for name in {names}; do
    printf '%s=%s\\0' "$name" "${{!name-<unset>}}" >> "$out/{phase}"
done
printf '%s\\n' "$DIB_ENV" > "$out/{phase}.dib-env"
"""


class _ProbeCase(testtools.TestCase):
    """An element whose extra-data.d and install.d hooks record what they see."""

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.elements = self.top / "elements"
        element = self.elements / "dib-env-probe"
        for phase in ("extra-data", "install"):
            hook = element / f"{phase}.d" / "50-record"
            hook.parent.mkdir(parents=True)
            hook.write_text(_HOOK.format(names=" ".join(_SEEN), phase=phase))
            hook.chmod(0o755)
        (element / "README.rst").write_text("Records the DIB variables hooks see.\n")

    def build(self) -> tuple[Path, dict[str, dict[str, str]]]:
        out = self.top / "out" / "probe"
        proc = base.run("sysext-create", "--element-path", str(self.elements),
                        "-t", "directory", "-o", str(out), "--os-id", "_any", "-a", "arm64",
                        "--cache-dir", str(self.top / "cache"), "--workdir",
                        str(self.top / "work"), "dib-env-probe",
                        env={"DIB_USER_SETTING": "hello world", "TMP_MOUNT_PATH": "/"})
        self.assertEqual(0, proc.returncode, proc.stderr)
        seen = {}
        for phase in ("extra-data", "install"):
            raw = (out / "usr/share/dib-env" / phase).read_text()
            seen[phase] = dict(item.split("=", 1) for item in raw.split("\0") if item)
        return out, seen


class TestDibEnvironment(_ProbeCase):

    def test_hooks_see_dibs_variables(self) -> None:
        out, seen = self.build()
        self.assertEqual(seen["extra-data"], seen["install"])
        env = seen["install"]
        self.assertEqual(env["TARGET_ROOT"], env["TMP_MOUNT_PATH"])
        self.assertTrue(env["TMP_MOUNT_PATH"].startswith(str(self.top / "work")),
                        env["TMP_MOUNT_PATH"])
        self.assertEqual("arm64", env["ARCH"])
        self.assertEqual("arm64", env["SYSEXT_ARCH"])
        self.assertEqual("systemd", env["DIB_INIT_SYSTEM"])
        self.assertEqual("3", env["DIB_PYTHON_VERSION"])
        self.assertEqual("python3", env["DIB_PYTHON"])
        self.assertEqual(sys.executable, env["DIB_PYTHON_EXEC"])
        self.assertEqual(str(self.top / "cache" / "dib-image-cache"), env["DIB_IMAGE_CACHE"])
        self.assertEqual("source", env["DIB_DEFAULT_INSTALLTYPE"])
        self.assertEqual(str(self.elements), env["ELEMENTS_PATH"].split(":")[0])
        self.assertEqual("probe", env["IMAGE_NAME"])
        self.assertEqual("dib-env-probe", env["IMAGE_ELEMENT"])
        self.assertEqual(["--element-path", str(self.elements), "--arch", "arm64",
                          "-o", str(self.top / "out" / "probe"), "dib-env-probe"],
                         shlex.split(env["DIB_ARGS"]))
        self.assertEqual("hello world", env["DIB_USER_SETTING"])
        dib_env = (out / "usr/share/dib-env/install.dib-env").read_text().splitlines()
        self.assertIn("export DIB_USER_SETTING='hello world'", dib_env)
        self.assertIn("export DIB_INIT_SYSTEM=systemd", dib_env)

    def test_x86_64_is_amd64(self) -> None:
        out = self.top / "out" / "probe"
        proc = base.run("sysext-create", "--element-path", str(self.elements),
                        "-t", "directory", "-o", str(out), "--os-id", "_any", "-a", "x86-64",
                        "--cache-dir", str(self.top / "cache"), "dib-env-probe")
        self.assertEqual(0, proc.returncode, proc.stderr)
        raw = (out / "usr/share/dib-env/install").read_text()
        env = dict(item.split("=", 1) for item in raw.split("\0") if item)
        self.assertEqual(("amd64", "x86-64"), (env["ARCH"], env["SYSEXT_ARCH"]))


class TestDibEnvironmentOnABase(_ProbeCase):
    """The same probe over a real Debian base: extra-data.d on the host, install.d chrooted."""

    def test_hooks_see_dibs_variables(self) -> None:
        from tests.functional.debian_base import base_tarball

        base.require_root("building against --base")
        tarball = base_tarball()
        out = self.top / "out" / "probe"
        proc = base.run("sysext-create", "--element-path", str(self.elements),
                        "--base", str(tarball), "-t", "directory", "-o", str(out),
                        "--cache-dir", str(self.top / "cache"), "--workdir",
                        str(self.top / "work"), "dib-env-probe",
                        env={"DIB_USER_SETTING": "on a base"}, timeout=900)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        seen = {}
        for phase in ("extra-data", "install"):
            raw = (out / "usr/share/dib-env" / phase).read_text()
            seen[phase] = dict(item.split("=", 1) for item in raw.split("\0") if item)
        host, inside = seen["extra-data"], seen["install"]
        self.assertTrue(host["TMP_MOUNT_PATH"].endswith("/merged"), host["TMP_MOUNT_PATH"])
        self.assertEqual(host["TARGET_ROOT"], host["TMP_MOUNT_PATH"])
        self.assertEqual(("/", "/"), (inside["TARGET_ROOT"], inside["TMP_MOUNT_PATH"]))
        for key in ("DIB_PYTHON_EXEC", "DIB_IMAGE_CACHE", "ELEMENTS_PATH"):
            self.assertNotEqual("<unset>", host[key], key)
            self.assertEqual("<unset>", inside[key], key)
        for key in ("ARCH", "SYSEXT_ARCH", "DIB_INIT_SYSTEM", "DIB_PYTHON_VERSION",
                    "DIB_PYTHON", "DIB_DEFAULT_INSTALLTYPE", "IMAGE_NAME", "DIB_ARGS",
                    "DIB_USER_SETTING"):
            self.assertEqual(host[key], inside[key], key)
        self.assertEqual("systemd", inside["DIB_INIT_SYSTEM"])
        self.assertEqual("3", inside["DIB_PYTHON_VERSION"])
        self.assertEqual("on a base", inside["DIB_USER_SETTING"])


#: what DIB's lib/ exports that has no meaning for a system extension (a disk
#: image's block devices, file systems, sizes, mounts, output files, logging)
_DISK_IMAGE_ONLY = frozenset({
    "DIB_BLOCK_DEVICE_PARAMS_YAML", "DIB_BOOT_LABEL", "DIB_CHECKSUM", "DIB_IMAGE_SIZE",
    "DIB_LOCKFILES", "DIB_MIN_TMPFS", "DIB_MOUNTPOINTS", "DIB_NO_TMPFS", "DIB_ROOT_FSTYPE",
    "DIB_ROOT_LABEL", "EXTRA_UNMOUNT", "FS_TYPE", "IMAGE_BLOCK_DEVICE", "IMAGE_BLOCK_DEVICES",
    "IMAGE_TYPE", "OUT_IMAGE_PATH", "PS4", "TMP_IMAGE_DIR", "TMP_IMAGE_PATH",
    "HOME", "LC_ALL",  # passed through from the caller when set, not set by the builder
    "DIB_OFFLINE",  # only with --offline
})


class TestParityWithDib(testtools.TestCase):
    """Every variable DIB's own scripts export reaches hooks (or is disk-image only)."""

    def test_dib_exports_are_set(self) -> None:
        import inspect
        import re

        from sysext_builder.config import BuildConfig
        from sysext_builder.staging import buildenv
        from sysext_builder.staging.workspace import Workspace

        try:
            import diskimage_builder  # type: ignore[import-untyped]
        except ImportError:
            self.skipTest("diskimage-builder is not installed (see test-requirements.txt)")
        lib = Path(inspect.getfile(diskimage_builder)).parent / "lib"
        exported: set[str] = set()
        for name in ("disk-image-create", "img-defaults", "common-defaults",
                     "common-functions", "img-functions"):
            text = (lib / name).read_text(encoding="utf-8")
            exported |= set(re.findall(r"^\s*export ([A-Z_][A-Z0-9_]*)", text, re.MULTILINE))
        self.assertIn("TMP_MOUNT_PATH", exported, "the scan of DIB's lib/ found too little")
        top = Path(self.useFixture(fixtures.TempDir()).path)
        config = BuildConfig(elements=("x",), output=str(top / "x"), environ={})
        with Workspace(top) as ws:
            env = buildenv.host_environment(config, ws, ["x"], "x86-64", ws.root)
        env.update(buildenv.name_variables(buildenv.Target(top, "x", {})))
        missing = sorted(exported - _DISK_IMAGE_ONLY - set(env))
        self.assertEqual([], missing, "DIB exports these to its hooks; we do not")
