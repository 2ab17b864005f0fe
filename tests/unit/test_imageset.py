"""--config files: parsing, checking, command lines, summary, SHA256SUMS, sysupdate."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder import imageset
from sysext_builder.errors import ConfigError, UsageError
from sysext_builder.output import sysupdate


class TestLoad(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def load(self, text: str) -> list[imageset.ImageSpec]:
        path = self.top / "images.yaml"
        path.write_text(text)
        return imageset.load(path, Path("/out"))

    def test_full_entry_and_defaults(self) -> None:
        specs = self.load(
            "images:\n"
            "  - name: oem-azure\n"
            "    elements: [azure-oem, simple-init]\n"
            "    output: built\n"
            "    formats: squashfs,erofs\n"
            "    options: {os-version-id: '3975.2.0', checksum: true, base: base.tar}\n"
            "    environment: {DIB_OEM_VERSION: 2}\n"
            "  - name: oem-qemu\n"
            "    elements: qemu-oem\n")
        first, second = specs
        self.assertEqual(("azure-oem", "simple-init"), first.elements)
        self.assertEqual(self.top / "built", first.output)
        self.assertEqual(("squashfs", "erofs"), first.formats)
        self.assertEqual(str(self.top / "base.tar"), first.options["base"])
        self.assertEqual({"DIB_OEM_VERSION": "2"}, first.environment)
        self.assertEqual((Path("/out"), ("qemu-oem",), ("squashfs",)),
                         (second.output, second.elements, second.formats))

    def test_unknown_key_names_file_line_and_suggests(self) -> None:
        err = self.assertRaises(ConfigError, self.load,
                                "- name: a\n  elements: [x]\n- name: b\n  element: [y]\n")
        self.assertEqual(f"{self.top}/images.yaml:3 (image 2): unknown key 'element'",
                         err.message)
        self.assertEqual("did you mean 'elements'?", err.hint)

    def test_unknown_option_suggests(self) -> None:
        err = self.assertRaises(ConfigError, self.load,
                                "- name: a\n  elements: [x]\n  options: {os_id: debian}\n")
        self.assertIn("options: unknown key 'os_id'", err.message)
        self.assertEqual("did you mean 'os-id'?", err.hint)

    def test_missing_fields_and_bad_yaml(self) -> None:
        err = self.assertRaises(ConfigError, self.load, "- elements: [x]\n")
        self.assertIn("'name' is required", err.message)
        err = self.assertRaises(ConfigError, self.load, "- name: a\n  elements: []\n")
        self.assertIn("'elements' must be a non-empty list", err.message)
        err = self.assertRaises(ConfigError, self.load, "- name: a\n  elements: [x\n")
        self.assertIn("images.yaml:", err.message)
        self.assertIn("invalid YAML", err.message)
        err = self.assertRaises(ConfigError, self.load, "name: a\n")
        self.assertIn("expected a list of images", err.message)

    def test_two_images_writing_the_same_file(self) -> None:
        err = self.assertRaises(ConfigError, self.load,
                                "- {name: a, elements: [x]}\n- {name: a, elements: [y]}\n")
        self.assertIn("images 1 and 2 both write /out/a", err.message)


class TestRun(testtools.TestCase):

    def test_argv_puts_image_options_after_common_ones(self) -> None:
        spec = imageset.ImageSpec(name="img", elements=("a", "b"), output=Path("/o"),
                                  formats=("erofs",),
                                  options={"os-id": "flatcar", "strict": True,
                                           "checksum": False})
        argv = imageset.argv_for(spec, ["--os-id", "debian", "--offline"])
        tail = argv[argv.index("sysext-create") + 1:]
        self.assertEqual(["a", "b", "--os-id", "debian", "--offline", "-o", "/o/img",
                          "-t", "erofs", "--os-id", "flatcar", "--strict"], tail)

    def test_build_all_keeps_order_and_other_images_after_a_failure(self) -> None:
        specs = [imageset.ImageSpec(name=n, elements=("x",), output=Path("/o"))
                 for n in ("one", "two", "three")]

        def fake(spec: imageset.ImageSpec, common: object, env: object) -> imageset.Outcome:
            code = 20 if spec.name == "two" else 0
            return imageset.Outcome(spec, returncode=code, seconds=1.0,
                                    error="hook failed" if code else "")

        outcomes = imageset.build_all(specs, [], {}, jobs=2, build=fake)
        self.assertEqual(["one", "two", "three"], [o.spec.name for o in outcomes])
        lines = imageset.summary(outcomes)
        self.assertIn("FAILED(20)", lines[2])
        self.assertIn("hook failed", lines[2])
        self.assertEqual("2 built, 1 failed", lines[-1])

    def test_sha256sums_per_directory(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        (top / "b.raw").write_bytes(b"bbb")
        (top / "a.raw").write_bytes(b"aaa")
        written = imageset.write_sha256sums([top / "b.raw", top / "a.raw"])
        self.assertEqual([top / "SHA256SUMS"], written)
        expected = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                           for n, d in (("a.raw", b"aaa"), ("b.raw", b"bbb")))
        self.assertEqual(expected, (top / "SHA256SUMS").read_text())
        self.assertEqual(["SHA256SUMS", "a.raw", "b.raw"], sorted(p.name for p in top.iterdir()))


class TestSysupdate(testtools.TestCase):

    def test_transfer_and_versioned_link(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        image = top / "oem-azure.raw"
        image.write_bytes(b"image")
        versioned, definition = sysupdate.publish(image, "1.2.3", "https://example.com/sx/")
        self.assertEqual("oem-azure_1.2.3.raw", versioned.name)
        self.assertEqual(image.stat().st_ino, versioned.stat().st_ino)
        text = definition.read_text()
        self.assertIn("Path=https://example.com/sx/\n", text)
        self.assertEqual(2, text.count("MatchPattern=oem-azure_@v.raw\n"))
        self.assertIn("CurrentSymlink=/var/lib/extensions/oem-azure.raw\n", text)

    def test_bad_version_and_url(self) -> None:
        self.assertRaises(UsageError, sysupdate.check_version, "1_2")
        self.assertRaises(UsageError, sysupdate.check_version, "a/b")
        self.assertEqual("2024.1-r3", sysupdate.check_version("2024.1-r3"))
        self.assertRaises(UsageError, sysupdate.transfer, "x", "example.com/x")


class TestClashes(testtools.TestCase):

    def test_side_file_written_by_two_images_is_reported(self) -> None:
        a = imageset.Outcome(imageset.ImageSpec(name="oem-a", elements=("x",), output=Path("/o")),
                             returncode=0, outputs=[Path("/o/oem-a.raw"), Path("/o/oem-release")])
        b = imageset.Outcome(imageset.ImageSpec(name="oem-b", elements=("x",), output=Path("/o")),
                             returncode=0, outputs=[Path("/o/oem-b.raw"), Path("/o/oem-release")])
        self.assertEqual({Path("/o/oem-release"): ["oem-a", "oem-b"]},
                         imageset.clashing_outputs([a, b]))
        self.assertEqual({}, imageset.clashing_outputs([a]))


class TestOptionValues(testtools.TestCase):
    """options: values are typed by the options table."""

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def load(self, options: str) -> list[imageset.ImageSpec]:
        path = self.top / "images.yaml"
        path.write_text(f"- name: img\n  elements: [a]\n  options:\n{options}")
        return imageset.load(path, Path("/out"))

    def test_numbers_are_text_and_paths_relative_to_the_file(self) -> None:
        spec, = self.load("    os-version-id: 12\n    base: b.tar\n    strict: true\n")
        self.assertEqual({"os-version-id": "12", "base": str(self.top / "b.tar"),
                          "strict": True}, dict(spec.options))

    def test_a_named_base_is_not_a_path(self) -> None:
        spec, = self.load("    base: debian:bookworm+zstd\n")
        self.assertEqual({"base": "debian:bookworm+zstd"}, dict(spec.options))

    def test_a_list_or_mapping_is_refused_naming_the_key(self) -> None:
        err = self.assertRaises(ConfigError, self.load, "    os-id: [debian, flatcar]\n")
        self.assertIn("options: os-id: expected a single value, got list", err.message)
        self.assertRaises(ConfigError, self.load, "    arch: {x: 1}\n")

    def test_a_flag_must_be_a_boolean(self) -> None:
        err = self.assertRaises(ConfigError, self.load, '    strict: "yes"\n')
        self.assertIn("options: strict: expected true or false", err.message)


class TestHostileFiles(testtools.TestCase):
    """Issue 12: values are typed, aliases refused, the file bounded."""

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.path = self.top / "images.yaml"

    def load(self, text: str) -> list[imageset.ImageSpec]:
        self.path.write_text(text)
        return imageset.load(self.path, Path("/out"))

    def env(self, body: str) -> list[imageset.ImageSpec]:
        return self.load(f"- name: img\n  elements: [a]\n  environment:\n{body}")

    def test_environment_scalars_become_text(self) -> None:
        spec, = self.env("    A: 1\n    B: 2.5\n    C: true\n    D: text\n")
        self.assertEqual({"A": "1", "B": "2.5", "C": "true", "D": "text"},
                         dict(spec.environment))

    def test_a_list_in_environment_names_image_key_and_line(self) -> None:
        err = self.assertRaises(ConfigError, self.env, "    OK: 1\n    L: [1, 2]\n")
        self.assertEqual(f"{self.path}:5 (image 'img'): environment: L: expected a single "
                         "value (text, number, true/false), got list", err.message)

    def test_mapping_null_and_bad_names_are_refused(self) -> None:
        for body, words in (("    M: {x: 1}\n", "got dict"), ("    N:\n", "got null"),
                            ("    1BAD: x\n", "not a variable name")):
            err = self.assertRaises(ConfigError, self.env, body)
            self.assertIn(words, err.message)
        err = self.assertRaises(ConfigError, self.load,
                                "- name: img\n  elements: [a]\n  environment: [A, B]\n")
        self.assertIn("'environment' must be a mapping", err.message)
        err = self.assertRaises(ConfigError, self.load,
                                "- name: img\n  elements: [a]\n  options: [x]\n")
        self.assertIn("'options' must be a mapping", err.message)

    def test_an_option_error_names_the_key_line(self) -> None:
        err = self.assertRaises(ConfigError, self.load,
                                "- name: img\n  elements: [a]\n  options:\n"
                                "    arch: x86-64\n    os-id: [a]\n")
        self.assertIn(f"{self.path}:5 (image 'img'): options: os-id:", err.message)

    def test_an_alias_bomb_is_refused_before_it_expands(self) -> None:
        lines = ['    A: &a ["x","x","x","x","x","x","x","x","x"]']
        for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
            lines.append(f"    {cur.upper()}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
        err = self.assertRaises(ConfigError, self.env, "\n".join(lines) + "\n")
        self.assertEqual(f"{self.path}:5: invalid YAML: aliases (*name) are not allowed; "
                         "write the values out", err.message)

    def test_deep_nesting_size_and_special_files(self) -> None:
        err = self.assertRaises(ConfigError, self.load, "[" * 100000)
        self.assertIn("nested too deeply", err.message)
        err = self.assertRaises(ConfigError, self.load,
                                "# pad\n" * (imageset.MAX_CONFIG_BYTES // 6 + 1))
        self.assertIn("larger than 1 MiB", err.message)
        err = self.assertRaises(ConfigError, imageset.load, Path("/dev/zero"), Path("/out"))
        self.assertEqual("/dev/zero: not a regular file", err.message)
        os.mkfifo(self.top / "fifo")
        err = self.assertRaises(ConfigError, imageset.load, self.top / "fifo", Path("/out"))
        self.assertIn("not a regular file", err.message)
        self.path.write_bytes(b"- name: \xff\n")
        err = self.assertRaises(ConfigError, imageset.load, self.path, Path("/out"))
        self.assertIn("not UTF-8", err.message)
