"""Temporary names beside the final ones and the atomic commit of outputs."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder import runner
from sysext_builder.errors import OutputError
from sysext_builder.output import atomic


def listing(directory_: Path) -> list[str]:
    return sorted(os.listdir(directory_))


class TempDirTestCase(testtools.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)


class TestTempPathAndCommit(TempDirTestCase):

    def test_temp_path_is_hidden_unique_and_beside_final(self) -> None:
        final = self.dir / "hello.raw"
        first, second = atomic.temp_path_for(final), atomic.temp_path_for(final)
        self.assertEqual(self.dir, first.parent)
        self.assertTrue(first.name.startswith(".hello.raw.tmp-"))
        self.assertIn(f"-{os.getpid()}-", first.name)
        self.assertNotEqual(first, second)

    def test_commit_file_replaces_existing(self) -> None:
        final = self.dir / "hello.raw"
        final.write_text("old")
        tmp = atomic.temp_path_for(final)
        tmp.write_text("new")
        atomic.commit(tmp, final)
        self.assertEqual("new", final.read_text())
        self.assertEqual(["hello.raw"], listing(self.dir))

    def test_commit_file_to_new_name(self) -> None:
        final = self.dir / "hello.raw"
        tmp = atomic.temp_path_for(final)
        tmp.write_text("new")
        atomic.commit(tmp, final)
        self.assertEqual(["hello.raw"], listing(self.dir))

    def _dir_with(self, path: Path, content: str) -> Path:
        """A directory-format image (as the builder writes one) holding ``content``."""
        path.mkdir()
        (path / "content").write_text(content)
        (path / "usr/lib/extension-release.d").mkdir(parents=True)
        (path / "usr/lib/extension-release.d/extension-release.hello").write_text("ID=_any\n")
        return path

    def test_a_users_directory_of_that_name_is_never_replaced(self) -> None:
        final = self.dir / "hello.raw"
        final.mkdir()
        (final / "my-notes").write_text("keep me")
        tmp = atomic.temp_path_for(final)
        tmp.write_text("image")
        err = self.assertRaises(OutputError, atomic.commit, tmp, final)
        self.assertIn("is a directory that is not an extension image", err.message)
        self.assertEqual("keep me", (final / "my-notes").read_text())

    def test_temporaries_of_dead_builds_are_removed_live_ones_kept(self) -> None:
        final = self.dir / "hello.raw"
        dead = self.dir / ".hello.raw.tmp-999999999-0badcafe.1-abcd1234"
        dead.write_text("half an image")
        reused = self.dir / f".hello.raw.tmp-{os.getpid()}-0badcafe.1-abcd1234"
        reused.mkdir()  # this PID, but another process's stamp: a reused PID
        live = self.dir / f".hello.raw.tmp-{runner.temp_tag()}-abcd1234"
        live.write_text("being written")
        other = self.dir / ".other.raw.tmp-999999999-0badcafe.1-abcd1234"
        other.write_text("another image's")
        atomic.temp_path_for(final)
        self.assertEqual(sorted([live.name, other.name]),
                         sorted(n for n in listing(self.dir) if n.startswith(".")))

    def test_commit_directory_replaces_existing_by_exchange(self) -> None:
        final = self._dir_with(self.dir / "hello", "old")
        tmp = self._dir_with(atomic.temp_path_for(final), "new")
        atomic.commit(tmp, final)
        self.assertEqual("new", (final / "content").read_text())
        self.assertEqual(["hello"], listing(self.dir))

    def test_commit_directory_fallback_without_exchange(self) -> None:
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.output.atomic._exchange", lambda a, b: False))
        final = self._dir_with(self.dir / "hello", "old")
        tmp = self._dir_with(atomic.temp_path_for(final), "new")
        atomic.commit(tmp, final)
        self.assertEqual("new", (final / "content").read_text())
        self.assertEqual(["hello"], listing(self.dir))

    def test_commit_fallback_restores_old_when_second_rename_fails(self) -> None:
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.output.atomic._exchange", lambda a, b: False))
        final = self._dir_with(self.dir / "hello", "old")
        tmp = atomic.temp_path_for(final)  # missing: the second rename fails
        self.assertRaises(OSError, atomic._replace_with_tree, tmp, final)
        self.assertEqual("old", (final / "content").read_text())
        self.assertEqual(["hello"], listing(self.dir))

    def test_commit_new_directory(self) -> None:
        final = self.dir / "hello"
        tmp = self._dir_with(atomic.temp_path_for(final), "new")
        atomic.commit(tmp, final)
        self.assertEqual("new", (final / "content").read_text())

    def test_commit_file_over_directory(self) -> None:
        final = self._dir_with(self.dir / "hello", "old")
        tmp = atomic.temp_path_for(final)
        tmp.write_text("file now")
        atomic.commit(tmp, final)
        self.assertEqual("file now", final.read_text())
        self.assertEqual(["hello"], listing(self.dir))

    def test_commit_refuses_other_directory(self) -> None:
        (self.dir / "a").mkdir()
        tmp = self.dir / "a" / "x"
        tmp.write_text("x")
        err = self.assertRaises(OutputError, atomic.commit, tmp, self.dir / "x")
        self.assertIn("not in the same directory", err.message)

    def test_commit_error_is_output_error(self) -> None:
        final = self.dir / "hello.raw"
        err = self.assertRaises(OutputError, atomic.commit, atomic.temp_path_for(final), final)
        self.assertIn("cannot move", err.message)
        self.assertIsNotNone(err.hint)

