"""sysext-create end to end with the fixture elements (real bash, real packers)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import fixtures
import testtools

from sysext_builder.sysext import osrelease
from tests.functional import base

SLEEPER_TIMEOUT = 60


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TestBuildDirectory(testtools.TestCase):
    """The directory format needs no packer: the whole pipeline, inspectable."""

    def setUp(self) -> None:
        super().setUp()
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def create(self, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
        return base.run("sysext-create", "--element-path", str(base.BUILD_ELEMENTS), *args,
                        env=env)

    def test_valid_extension_tree(self) -> None:
        proc = self.create("hello", "-t", "directory", "-o", f"{self.out}/",
                           "--os-id", "sbtest", "--os-version-id", "7", "-a", "x86-64")
        self.assertEqual(0, proc.returncode, proc.stderr)
        tree = self.out / "hello-ext"
        self.assertEqual("#!/bin/sh\necho \"hello from a sysext\"\n",
                         (tree / "usr/bin/hello").read_text())
        self.assertEqual(0o755, (tree / "usr/bin/hello").stat().st_mode & 0o777)
        self.assertEqual(["opt", "usr"][-1:], sorted(p.name for p in tree.iterdir()))
        release = osrelease.read_file(
            tree / "usr/lib/extension-release.d/extension-release.hello-ext")
        self.assertEqual("sbtest", release["ID"])
        self.assertEqual("7", release["VERSION_ID"])
        self.assertEqual("x86-64", release["ARCHITECTURE"])
        self.assertEqual("Hello fixture", release["SYSEXT_NAME"])
        self.assertEqual("1", release["EXTENSION_RELOAD_MANAGER"])
        wants = tree / "usr/lib/systemd/system/multi-user.target.wants/hello.service"
        self.assertEqual("../hello.service", os.readlink(wants))
        factory = tree / "usr/share/factory/etc/hello/hello.conf"
        self.assertEqual("greeting=hello from a sysext\n", factory.read_text())
        tmpfiles = "".join(p.read_text() for p in (tree / "usr/lib/tmpfiles.d").iterdir())
        self.assertIn("/etc/hello/hello.conf", tmpfiles)
        self.assertIn("/var/lib/hello", tmpfiles)
        self.assertEqual(0, int((tree / "usr/bin/hello").lstat().st_mtime))
        self.assertEqual("NAME=hello-ext\n", (self.out / "hello-release").read_text())
        self.assertIn("[hello/10-hello-bin] installed hello for hello-ext (x86-64) epoch=0",
                      proc.stderr)

    def test_manifest_lists_files_and_no_environment_values(self) -> None:
        proc = self.create("hello", "-t", "directory", "-o", f"{self.out}/hello-ext",
                           env={"DIB_SECRET_PASSWORD": "hunter2-do-not-leak"})
        self.assertEqual(0, proc.returncode, proc.stderr)
        text = (self.out / "hello-ext.manifest.json").read_text()
        self.assertNotIn("hunter2-do-not-leak", text)
        doc = json.loads(text)
        self.assertEqual(["fixture-target", "hello"], [e["name"] for e in doc["elements"]])
        files = {f["path"]: f for f in doc["files"]}
        hello = files["usr/bin/hello"]
        self.assertEqual(hashlib.sha256((self.out / "hello-ext/usr/bin/hello").read_bytes())
                         .hexdigest(), hello["sha256"])
        self.assertEqual("sbtest", doc["extension_release"]["ID"])
        self.assertEqual(["hello-release"], doc["artifacts"])

    def test_failing_hook_names_element_phase_hook_and_writes_nothing(self) -> None:
        proc = self.create("failing", "-t", "directory", "-o", f"{self.out}/broken")
        self.assertEqual(20, proc.returncode, proc.stderr)
        self.assertIn("sysext-create: error: hook 50-fail of element failing in phase "
                      "install.d failed with exit status 3", proc.stderr)
        self.assertIn("cannot find the widget", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertEqual([], sorted(os.listdir(self.out)))

    def test_keep_workdir_on_failure(self) -> None:
        work = Path(self.useFixture(fixtures.TempDir()).path)
        proc = self.create("failing", "-t", "directory", "-o", f"{self.out}/broken",
                           "--workdir", str(work), "--keep-workdir")
        self.assertEqual(20, proc.returncode)
        kept = list(work.iterdir())
        self.assertEqual(1, len(kept))
        self.assertTrue((kept[0] / "root/usr/bin/hello").exists())

    def test_strict_refuses_lowering(self) -> None:
        proc = self.create("hello", "-t", "directory", "-o", f"{self.out}/x", "--strict")
        self.assertEqual(21, proc.returncode, proc.stderr)
        self.assertIn("etc/hello/hello.conf", proc.stderr)
        self.assertFalse((self.out / "x").exists())

    def test_logfile_has_the_debug_log_and_hook_output(self) -> None:
        log = self.out / "build.log"
        proc = self.create("hello", "-t", "directory", "-o", f"{self.out}/img/hello-ext",
                           "--logfile", str(log))
        self.assertEqual(0, proc.returncode, proc.stderr)
        text = log.read_text()
        self.assertRegex(text, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z DEBUG ")
        self.assertIn("[hello/10-hello-bin] installed hello for hello-ext", text)
        self.assertNotIn(" DEBUG ", proc.stderr, "the terminal stays at INFO")

    def test_unknown_format_lists_available(self) -> None:
        proc = self.create("hello", "-t", "zip", "-o", f"{self.out}/x")
        self.assertEqual(15, proc.returncode, proc.stderr)
        self.assertIn("squashfs", proc.stderr)


class TestBuildImages(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        base.require_tool("mksquashfs", "squashfs-tools")
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def create(self, *args: str) -> subprocess.CompletedProcess[str]:
        return base.run("sysext-create", "--element-path", str(base.BUILD_ELEMENTS), *args)

    def test_reproducible_squashfs_and_erofs(self) -> None:
        base.require_tool("mkfs.erofs", "erofs-utils")
        for fmt in ("squashfs", "erofs"):
            digests = []
            for run in ("a", "b"):
                work = Path(self.useFixture(fixtures.TempDir()).path)
                proc = self.create("hello", "-t", fmt, "-o", f"{self.out}/{run}-{fmt}/hello-ext",
                                   "--workdir", str(work), "--checksum")
                self.assertEqual(0, proc.returncode, proc.stderr)
                image = self.out / f"{run}-{fmt}" / "hello-ext.raw"
                digests.append(sha256(image))
                self.assertEqual(f"{digests[-1]}  hello-ext.raw\n",
                                 (image.parent / "hello-ext.raw.sha256").read_text())
                time.sleep(1.1)  # different wall-clock mtimes in the second build
            self.assertEqual(digests[0], digests[1], f"{fmt} image not reproducible")

    def test_failed_build_keeps_the_existing_image(self) -> None:
        proc = self.create("hello", "-o", f"{self.out}/hello-ext")
        self.assertEqual(0, proc.returncode, proc.stderr)
        image = self.out / "hello-ext.raw"
        before = sha256(image)
        proc = self.create("failing", "-o", f"{self.out}/hello-ext")
        self.assertEqual(20, proc.returncode)
        self.assertEqual(before, sha256(image))
        self.assertEqual(["hello-ext.manifest.json", "hello-ext.raw", "hello-release"],
                         sorted(os.listdir(self.out)))

    def _pid_sleeper(self) -> Path:
        """An element path with ``pid-sleeper``: its hook runs ``sleep 60`` in the
        foreground, as the fixture ``sleeper`` does, and that process first writes
        its own PID (bash's $$ before exec) to state/sleep.pid."""
        elements = Path(self.useFixture(fixtures.TempDir()).path)
        hooks = elements / "pid-sleeper" / "install.d"
        hooks.mkdir(parents=True)
        (elements / "pid-sleeper" / "README.rst").write_text(
            "pid-sleeper\n===========\n\nAn install hook that waits to be interrupted.\n")
        (elements / "pid-sleeper" / "element-deps").write_text("hello\n")
        hook = hooks / "50-sleep"
        hook.write_text(
            "#!/bin/bash\nset -eu\n"
            'pidfile="$TMP_BUILD_DIR/../state/sleep.pid"\n'
            "echo sleeping\n"
            """bash -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 60' _ "$pidfile"\n""")
        hook.chmod(0o755)
        return elements

    def _interrupt(self, signum: int) -> tuple[int, str, list[str], int]:
        """Interrupt a build while its hook sleeps: (status, stderr, outputs, sleep pid)."""
        work = Path(self.useFixture(fixtures.TempDir()).path)
        env = dict(os.environ)
        env.pop("ELEMENTS_PATH", None)
        proc = subprocess.Popen(
            base.command("sysext-create", "--element-path", str(self._pid_sleeper()),
                         "--element-path", str(base.BUILD_ELEMENTS),
                         "pid-sleeper", "-o", f"{self.out}/sleepy", "--workdir", str(work)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + SLEEPER_TIMEOUT
        pidfiles: list[Path] = []
        while not pidfiles:
            self.assertIsNone(proc.poll(), "build ended before the hook started")
            self.assertLess(time.monotonic(), deadline, "hook never started")
            time.sleep(0.05)
            pidfiles = list(work.glob("*/state/sleep.pid"))
        pid = int(pidfiles[0].read_text())
        self.assertTrue(_alive(pid), f"the hook's sleep (pid {pid}) is not running")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=SLEEPER_TIMEOUT)
        return proc.returncode, err, sorted(os.listdir(self.out)), pid

    def assertGone(self, pid: int) -> None:  # noqa: N802 (unittest's style)
        """The process ``pid`` ends within a few seconds of the build's exit."""
        deadline = time.monotonic() + 10
        while _alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                self.fail(f"the hook's sleep (pid {pid}) outlived the interrupted build")
            time.sleep(0.05)

    def test_sigint_mid_hook_leaves_nothing(self) -> None:
        code, err, left, sleeper = self._interrupt(signal.SIGINT)
        self.assertEqual(130, code, err)
        self.assertEqual([], left)
        self.assertGone(sleeper)

    def test_sigterm_mid_hook_leaves_nothing(self) -> None:
        code, err, left, sleeper = self._interrupt(signal.SIGTERM)
        self.assertEqual(143, code, err)
        self.assertEqual([], left)
        self.assertIn("interrupted by SIGTERM", err)
        self.assertGone(sleeper)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (not reaped where PID 1 does not reap) is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class TestBuildThenMerge(testtools.TestCase):
    """Images sysext-create writes are accepted by the real systemd-sysext."""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("merging with systemd-sysext")
        base.require_tool("systemd-sysext", "systemd")
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def build(self, fmt: str) -> Path:
        base.require_tool({"squashfs": "mksquashfs", "erofs": "mkfs.erofs"}[fmt],
                          {"squashfs": "squashfs-tools", "erofs": "erofs-utils"}[fmt])
        proc = base.run("sysext-create", "--element-path", str(base.BUILD_ELEMENTS), "hello",
                        "-t", fmt, "-o", f"{self.out}/{fmt}/hello-ext")
        self.assertEqual(0, proc.returncode, proc.stderr)
        return self.out / fmt / "hello-ext.raw"

    def test_matching_target_merges_and_mismatching_is_refused(self) -> None:
        from sysext_builder.sysext import verify

        for fmt in ("squashfs", "erofs"):
            image = self.build(fmt)
            merged = verify.merge(image, {"ID": "sbtest", "VERSION_ID": "1"})
            self.assertTrue(merged.accepted, merged.log)
            self.assertIn("usr/bin/hello", merged.appeared)
            self.assertIn("usr/lib/systemd/system/multi-user.target.wants/hello.service",
                          merged.appeared)
            refused = verify.merge(image, {"ID": "sbtest", "VERSION_ID": "2"})
            self.assertFalse(refused.accepted, f"{fmt}: merged into a mismatching target")
            self.assertNotIn("usr/bin/hello", refused.appeared)
