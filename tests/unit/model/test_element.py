"""The element parser: name-list files, load_element and Element properties."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import fixtures
from testtools.matchers import MatchesRegex

from sysext_builder.errors import ElementFormatError
from sysext_builder.model import element
from sysext_builder.model.element import (
    Element,
    load_element,
    read_name_list,
    read_requirements,
    target_requirements,
    valid_name,
)
from tests.base import TestCase, fixture_dir, write_tree


class TestValidName(TestCase):

    def test_accepts_usual_names(self) -> None:
        for name in ("a", "azure-oem", "lib_a", "python3.11", "gcc+plugins", "0day", "A-Z"):
            self.assertTrue(valid_name(name), name)

    def test_rejects_bad_names(self) -> None:
        for name in ("", "-lead", ".hidden", "_under", "two words", "tab\tname", "a/b",
                     "a#b", "naïve", "a:b", "a\n"):
            self.assertFalse(valid_name(name), repr(name))


class TestReadNameList(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def write(self, text: str, name: str = "element-deps") -> Path:
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def test_blank_lines_and_comments_are_ignored(self) -> None:
        path = self.write("# leading comment\n\n   \nfoo\n\t\n  bar  # trailing comment\n"
                          "#baz\nqux#no-space comment\n")
        self.assertEqual(("foo", "bar", "qux"), read_name_list(path))

    def test_duplicates_keep_first_position(self) -> None:
        path = self.write("b\na\nb\nc\na\n")
        self.assertEqual(("b", "a", "c"), read_name_list(path))

    def test_file_order_is_kept(self) -> None:
        # Sorting is the resolver's business; the parser reports the file as written.
        self.assertEqual(("zeta", "alpha"), read_name_list(self.write("zeta\nalpha\n")))

    def test_empty_and_comment_only_files(self) -> None:
        self.assertEqual((), read_name_list(self.write("")))
        self.assertEqual((), read_name_list(self.write("# nothing here\n\n")))

    def test_no_trailing_newline_and_crlf(self) -> None:
        self.assertEqual(("a", "b"), read_name_list(self.write("a\r\nb")))

    def test_invalid_name_names_file_and_line(self) -> None:
        path = self.write("# deps\ngood\n\nbad name!\nalso-good\n")
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}:4: invalid element name 'bad name!'", exc.message)
        self.assertIn("one name per line", exc.hint or "")
        self.assertIn("'#' starts a comment", exc.hint or "")
        self.assertEqual(10, exc.exit_code)

    def test_invalid_leading_punctuation(self) -> None:
        path = self.write("ok\n-dash\n", name="element-provides")
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}:2: invalid element name '-dash'", exc.message)

    def test_two_names_on_one_line_is_an_error(self) -> None:
        path = self.write("a b\n")
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}:1: invalid element name 'a b'", exc.message)

    def test_not_utf8(self) -> None:
        path = self.dir / "element-deps"
        path.write_bytes(b"good\n\xff\xfe\n")
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertThat(exc.message, MatchesRegex(rf"^{path}: not UTF-8 text \(.+\)$"))

    def test_unreadable_file_is_a_format_error(self) -> None:
        path = self.dir / "element-deps"
        path.mkdir()  # a directory where a file belongs
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}: not a regular file (directory)", exc.message)

    def test_missing_file_is_a_format_error(self) -> None:
        path = self.dir / "element-deps"
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertThat(exc.message, MatchesRegex(rf"^{path}: cannot read: .+$"))


class TestHostileElementFiles(TestCase):
    """Element files are regular files of bounded size: never a hang, never a traceback."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def test_link_to_dev_zero_is_refused_without_reading(self) -> None:
        path = self.dir / "element-deps"
        path.symlink_to("/dev/zero")
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}: not a regular file (character device)", exc.message)
        self.assertIn("regular files", exc.hint or "")

    def test_fifo_is_refused_without_blocking(self) -> None:
        path = self.dir / "element-provides"
        os.mkfifo(path)
        exc = self.assertRaises(ElementFormatError, read_name_list, path)
        self.assertEqual(f"{path}: not a regular file (fifo)", exc.message)

    def test_file_over_the_limit_is_refused(self) -> None:
        path = self.dir / "target-requires"
        with open(path, "wb") as f:
            f.truncate(element.MAX_FILE_BYTES + 1)  # sparse: costs no disk
        exc = self.assertRaises(ElementFormatError, read_requirements, path)
        self.assertIn(f"larger than {element.MAX_FILE_BYTES} bytes", exc.message)
        self.assertTrue(exc.message.startswith(f"{path}: "))

    def test_file_at_the_limit_is_read(self) -> None:
        path = self.dir / "target-requires"
        path.write_bytes(b"a\n" + b"#" * (element.MAX_FILE_BYTES - 2))
        self.assertEqual(("a",), read_requirements(path))

    def test_load_element_names_the_file(self) -> None:
        (self.dir / "e").mkdir()
        (self.dir / "e" / "element-deps").symlink_to("/dev/zero")
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "e")
        self.assertIn(str(self.dir / "e" / "element-deps"), exc.message)
        self.assertEqual(10, exc.exit_code)


class TestLoadElement(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def test_basic_fixture(self) -> None:
        path = fixture_dir("basic") / "app"
        element = load_element(path, "somewhere")
        self.assertEqual("app", element.name)
        self.assertEqual(path, element.path)
        self.assertEqual("somewhere", element.origin)
        self.assertEqual(("lib-b", "lib-a"), element.deps)
        self.assertEqual((), element.provides)
        self.assertEqual(frozenset({"README.rst", "element-deps"}), element.entries)

    def test_full_fixture_deps_and_provides(self) -> None:
        element = load_element(fixture_dir("basic") / "full")
        self.assertEqual(("base-files", "lib-a"), element.deps)
        self.assertEqual(("full-virtual",), element.provides)
        self.assertEqual("", element.origin)

    def test_element_is_frozen(self) -> None:
        element = load_element(fixture_dir("basic") / "app")
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, element, "deps", ())

    def test_no_files_means_no_deps(self) -> None:
        (self.dir / "bare").mkdir()
        element = load_element(self.dir / "bare")
        self.assertEqual(((), (), frozenset()), (element.deps, element.provides, element.entries))

    def test_self_dependency(self) -> None:
        write_tree(self.dir, {"loop": {"deps": ["other", "loop"]}})
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "loop")
        self.assertEqual(f"{self.dir / 'loop' / 'element-deps'}: element 'loop' depends on itself",
                         exc.message)

    def test_provides_own_name(self) -> None:
        write_tree(self.dir, {"me": {"provides": ["me"]}})
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "me")
        self.assertEqual(
            f"{self.dir / 'me' / 'element-provides'}: element 'me' provides its own name",
            exc.message)

    def test_bad_provides_line_is_reported(self) -> None:
        write_tree(self.dir, {"p": {"element-provides": "fine\n\n# c\n.dot\n"}})
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "p")
        self.assertEqual(f"{self.dir / 'p' / 'element-provides'}:4: invalid element name '.dot'",
                         exc.message)

    def test_target_requires_lines(self) -> None:
        write_tree(self.dir, {"t": {"target-requires":
                                    "# what the target must have\npython3 >= 3.6  # glean\n\n"
                                    "  python3   >= 3.6\nsystemd-networkd\n"}})
        element = load_element(self.dir / "t")
        self.assertEqual(("python3 >= 3.6", "systemd-networkd"), element.target_requires)
        self.assertEqual([("t", "python3 >= 3.6"), ("t", "systemd-networkd")],
                         target_requirements([element, load_element(fixture_dir("basic") /
                                                                     "app")]))

    def test_target_requires_not_text(self) -> None:
        (self.dir / "b").mkdir()
        (self.dir / "b" / "target-requires").write_bytes(b"\xff\xfe\n")
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "b")
        self.assertIn(f"{self.dir / 'b' / 'target-requires'}: not UTF-8 text", exc.message)

    def test_missing_directory(self) -> None:
        exc = self.assertRaises(ElementFormatError, load_element, self.dir / "gone")
        self.assertEqual(f"{self.dir / 'gone'}: cannot read element: No such file or directory",
                         exc.message)


class TestElementProperties(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.full = load_element(fixture_dir("basic") / "full")
        self.bare = Element(name="bare", path=Path("/nowhere/bare"), origin="test")

    def test_package_installs_yaml(self) -> None:
        self.assertEqual(self.full.path / "package-installs.yaml", self.full.package_installs)
        self.assertIsNone(self.bare.package_installs)

    def test_package_installs_json(self) -> None:
        element = dataclasses.replace(self.bare, entries=frozenset({"package-installs.json"}))
        self.assertEqual(Path("/nowhere/bare/package-installs.json"), element.package_installs)

    def test_package_installs_yaml_preferred_over_json(self) -> None:
        element = dataclasses.replace(
            self.bare, entries=frozenset({"package-installs.json", "package-installs.yaml"}))
        self.assertEqual(Path("/nowhere/bare/package-installs.yaml"), element.package_installs)

    def test_pkg_map(self) -> None:
        self.assertEqual(self.full.path / "pkg-map", self.full.pkg_map)
        self.assertIsNone(self.bare.pkg_map)

    def test_source_repositories_sorted(self) -> None:
        self.assertEqual((self.full.path / "source-repository-alpha",
                          self.full.path / "source-repository-zeta"),
                         self.full.source_repositories)
        self.assertEqual((), self.bare.source_repositories)

    def test_static_and_environment_dirs(self) -> None:
        self.assertEqual(self.full.path / "static", self.full.static_dir)
        self.assertEqual(self.full.path / "environment.d", self.full.environment_dir)
        self.assertIsNone(self.bare.static_dir)
        self.assertIsNone(self.bare.environment_dir)

    def test_file_lookup(self) -> None:
        self.assertEqual(self.full.path / "README.rst", self.full.file("README.rst"))
        self.assertIsNone(self.full.file("no-such-file"))
