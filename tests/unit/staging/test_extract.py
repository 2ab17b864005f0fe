"""Overlay extraction: opaque directories are errors, changed symlinks and files are kept."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.staging.overlay import Overlay, extract

OPAQUE = "trusted.overlay.opaque"


def files_under(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*") if not p.is_dir()
                  or p.is_symlink())


class ExtractTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.lower = top / "lower"
        self.lower.mkdir()
        (top / "work").mkdir()
        self.overlay = Overlay.under(self.lower, top / "work")
        self.dest = top / "ext"
        self.dest.mkdir()

    def base(self, rel: str, text: str | None = None, link: str | None = None) -> Path:
        return self._make(self.lower / rel, text, link)

    def upper(self, rel: str, text: str | None = None, link: str | None = None) -> Path:
        return self._make(self.overlay.upper / rel, text, link)

    @staticmethod
    def _make(path: Path, text: str | None, link: str | None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if link is not None:
            os.symlink(link, path)
        elif text is not None:
            path.write_text(text)
            path.chmod(0o644)
        else:
            path.mkdir()
        return path

    def make_opaque(self, path: Path) -> None:
        try:
            os.setxattr(path, OPAQUE, b"y", follow_symlinks=False)
        except PermissionError:
            self.skipTest(f"setting {OPAQUE} needs CAP_SYS_ADMIN")
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                self.skipTest(f"the temporary filesystem has no trusted.* xattrs: {exc}")
            raise


class TestOpaqueDirectories(ExtractTestCase):

    def test_base_directory_replaced_by_an_opaque_one_is_an_error(self) -> None:
        self.base("usr/share/doc/base/README", "base doc")
        self.base("usr/bin/sh", "shell")
        doc = self.upper("usr/share/doc")
        self.upper("usr/share/doc/new/README", "new doc")
        self.upper("usr/bin/hello", "hello")
        self.make_opaque(doc)
        err = self.assertRaises(TreeRuleError, extract, self.overlay, self.dest)
        self.assertEqual("the build removed files of the base: /usr/share/doc/ (replaced)",
                         err.message)
        self.assertEqual(21, err.exit_code)
        self.assertIn("can only add files", err.hint or "")
        self.assertEqual([], os.listdir(self.dest), "nothing is moved on error")

    def test_opaque_directory_under_opt_is_named_too(self) -> None:
        self.base("opt/tool/lib/old.so", "old")
        self.make_opaque(self.upper("opt/tool/lib"))
        err = self.assertRaises(TreeRuleError, extract, self.overlay, self.dest)
        self.assertIn("/opt/tool/lib/ (replaced)", err.message)

    def test_opaque_directory_new_to_the_base_is_kept(self) -> None:
        self.base("usr/bin/sh", "shell")
        fresh = self.upper("usr/share/fresh")
        self.upper("usr/share/fresh/data", "d")
        self.make_opaque(fresh)
        counts = extract(self.overlay, self.dest)
        self.assertEqual(["usr/share/fresh/data"], files_under(self.dest))
        self.assertEqual(1, counts["kept"])
        self.assertNotIn(OPAQUE, os.listxattr(self.dest / "usr/share/fresh"))

    def test_whiteout_and_opaque_are_listed_together(self) -> None:
        if os.geteuid() != 0:
            self.skipTest("a whiteout (0:0 character device) needs root")
        self.base("usr/bin/sh", "shell")
        self.base("usr/lib/mod/a", "a")
        self.upper("usr/bin")
        os.mknod(self.overlay.upper / "usr/bin/sh", 0o020000, os.makedev(0, 0))
        self.make_opaque(self.upper("usr/lib/mod"))
        err = self.assertRaises(TreeRuleError, extract, self.overlay, self.dest)
        self.assertIn("/usr/bin/sh (deleted)", err.message)
        self.assertIn("/usr/lib/mod/ (replaced)", err.message)


class TestSameAsBase(ExtractTestCase):

    def test_symlink_whose_target_changed_is_kept(self) -> None:
        self.base("usr/lib/libfoo.so", link="libfoo.so.1")
        self.upper("usr/lib/libfoo.so", link="libfoo.so.2")
        counts = extract(self.overlay, self.dest)
        self.assertEqual(["usr/lib/libfoo.so"], files_under(self.dest))
        self.assertEqual("libfoo.so.2", os.readlink(self.dest / "usr/lib/libfoo.so"))
        self.assertEqual({"kept": 1, "identical": 0, "dropped": 0}, counts)

    def test_absolute_symlink_whose_target_changed_is_kept(self) -> None:
        self.base("usr/bin/editor", link="/usr/bin/vi")
        self.upper("usr/bin/editor", link="/usr/bin/nano")
        extract(self.overlay, self.dest)
        self.assertEqual(["usr/bin/editor"], files_under(self.dest))
        self.assertEqual("/usr/bin/nano", os.readlink(self.dest / "usr/bin/editor"))

    def test_identical_symlink_is_dropped(self) -> None:
        self.base("usr/lib/libfoo.so", link="libfoo.so.1")
        self.upper("usr/lib/libfoo.so", link="libfoo.so.1")
        self.upper("usr/lib/libbar.so", link="libbar.so.1")
        counts = extract(self.overlay, self.dest)
        self.assertEqual(["usr/lib/libbar.so"], files_under(self.dest))
        self.assertEqual({"kept": 1, "identical": 1, "dropped": 0}, counts)

    def test_identical_file_dropped_changed_file_kept(self) -> None:
        self.base("usr/share/a", "same")
        self.base("usr/share/b", "base")
        self.upper("usr/share/a", "same")
        self.upper("usr/share/b", "BASE")  # same size and mode, different bytes
        counts = extract(self.overlay, self.dest)
        self.assertEqual(["usr/share/b"], files_under(self.dest))
        self.assertEqual("BASE", (self.dest / "usr/share/b").read_text())
        self.assertEqual({"kept": 1, "identical": 1, "dropped": 0}, counts)

    def test_file_replaced_by_a_symlink_is_kept(self) -> None:
        self.base("usr/bin/tool", "binary")
        self.upper("usr/bin/tool", link="binary")
        extract(self.overlay, self.dest)
        self.assertEqual("binary", os.readlink(self.dest / "usr/bin/tool"))

    def test_directory_only_holding_identical_entries_is_not_created(self) -> None:
        self.base("usr/share/doc/README", "doc")
        self.upper("usr/share/doc/README", "doc")
        self.upper("usr/bin/new", "n")
        extract(self.overlay, self.dest)
        self.assertEqual(["usr/bin/new"], files_under(self.dest))
        self.assertFalse((self.dest / "usr/share").exists())
