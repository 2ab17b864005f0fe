"""The manifest: the file list (types, modes with set-id bits, hashes, links) and its JSON."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import fixtures
import testtools

from sysext_builder.config import BuildConfig
from sysext_builder.model.element import Element
from sysext_builder.output import manifest
from sysext_builder.output.place import manifest_text


class TestFileList(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "root"
        (self.root / "usr/bin").mkdir(parents=True)

    def file(self, rel: str, data: bytes, mode: int) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        return path

    def by_path(self) -> dict[str, dict[str, Any]]:
        return {e["path"]: e for e in manifest.file_list(self.root)}

    def test_set_id_and_sticky_bits_are_recorded(self) -> None:
        self.file("usr/bin/su", b"su", 0o4755)
        self.file("usr/bin/wall", b"wall", 0o2755)
        self.file("usr/bin/both", b"both", 0o6750)
        shared = self.root / "usr/share/shared"
        shared.mkdir(parents=True)
        os.chmod(shared, 0o1777)
        group_dir = self.root / "usr/share/group"
        group_dir.mkdir()
        os.chmod(group_dir, 0o2775)
        entries = self.by_path()
        self.assertEqual("4755", entries["usr/bin/su"]["mode"])
        self.assertEqual("2755", entries["usr/bin/wall"]["mode"])
        self.assertEqual("6750", entries["usr/bin/both"]["mode"])
        self.assertEqual("1777", entries["usr/share/shared"]["mode"])
        self.assertEqual("2775", entries["usr/share/group"]["mode"])

    def test_plain_modes_are_four_octal_digits(self) -> None:
        self.file("usr/bin/tool", b"x", 0o755)
        self.file("usr/bin/secret", b"y", 0o600)
        os.chmod(self.root / "usr/bin", 0o755)
        entries = self.by_path()
        self.assertEqual("0755", entries["usr/bin/tool"]["mode"])
        self.assertEqual("0600", entries["usr/bin/secret"]["mode"])
        self.assertEqual("0755", entries["usr/bin"]["mode"])

    def test_types_sizes_hashes_and_link_targets(self) -> None:
        data = b"#!/bin/sh\necho hi\n"
        self.file("usr/bin/hello", data, 0o755)
        os.symlink("hello", self.root / "usr/bin/hi")
        os.symlink("/usr/lib/missing", self.root / "usr/bin/dangling")
        os.mkfifo(self.root / "usr/bin/pipe")
        entries = self.by_path()
        self.assertEqual({"path": "usr/bin/hello", "mode": "0755", "type": "file",
                          "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
                         entries["usr/bin/hello"])
        self.assertEqual("symlink", entries["usr/bin/hi"]["type"])
        self.assertEqual("hello", entries["usr/bin/hi"]["target"])
        self.assertNotIn("sha256", entries["usr/bin/hi"])
        self.assertEqual("/usr/lib/missing", entries["usr/bin/dangling"]["target"])
        self.assertEqual("other", entries["usr/bin/pipe"]["type"])
        self.assertEqual({"path", "mode", "type"}, set(entries["usr"]))
        self.assertEqual("directory", entries["usr/bin"]["type"])

    def test_sorted_by_path_with_every_entry_and_each_file_its_own_hash(self) -> None:
        for index in range(12):  # more files than hashing threads
            self.file(f"usr/share/d{index % 3}/f{index:02}", f"content {index}".encode(), 0o644)
        entries = manifest.file_list(self.root)
        paths = [e["path"] for e in entries]
        self.assertEqual(sorted(paths), paths)
        self.assertEqual(len(set(paths)), len(paths))
        self.assertIn("usr/share/d1", paths)
        for entry in entries:
            if entry["type"] == "file":
                expected = hashlib.sha256((self.root / entry["path"]).read_bytes()).hexdigest()
                self.assertEqual(expected, entry["sha256"], entry["path"])
        self.assertEqual(12, sum(1 for e in entries if e["type"] == "file"))

    def test_does_not_follow_a_symlinked_directory(self) -> None:
        (self.root / "usr/lib/real").mkdir(parents=True)
        self.file("usr/lib/real/x", b"x", 0o644)
        os.symlink("real", self.root / "usr/lib/alias")
        paths = [e["path"] for e in manifest.file_list(self.root)]
        self.assertIn("usr/lib/alias", paths)
        self.assertNotIn("usr/lib/alias/x", paths)


class TestRender(testtools.TestCase):

    def test_document_shape(self) -> None:
        elements = [Element(name="hello", path=Path("/e/hello"), origin="path")]
        text = manifest.render(name="ext", elements=elements, release={"ID": "debian"},
                               files=[{"path": "usr", "mode": "0755", "type": "directory"}],
                               images=[{"format": "squashfs", "file": "ext.raw"}],
                               settings={"epoch": 0}, artifacts=["ext.sbom"],
                               extra={"packages": [{"name": "x", "version": "1"}]})
        self.assertTrue(text.endswith("}\n"))
        doc = json.loads(text)
        self.assertEqual(manifest.SCHEMA, doc["schema"])
        self.assertEqual("ext", doc["name"])
        self.assertEqual([{"name": "hello", "path": "/e/hello", "origin": "path"}],
                         doc["elements"])
        self.assertEqual({"ID": "debian"}, doc["extension_release"])
        self.assertEqual(["ext.sbom"], doc["artifacts"])
        self.assertEqual([{"name": "x", "version": "1"}], doc["packages"])
        self.assertEqual("ext.raw", doc["images"][0]["file"])

    def test_environment_values_are_never_recorded(self) -> None:
        secret = "s3cr3t-Pa55word"
        config = BuildConfig(elements=("hello",), formats=("squashfs",), epoch=7,
                             environ={"DIB_PASSWORD": secret, "DIB_TOKEN": secret,
                                      "HOME": f"/home/{secret}"})
        elements = [Element(name="hello", path=Path("/e/hello"), origin="path")]
        text = manifest_text(config, "ext", elements=elements, fields={"ID": "debian"},
                             files=[], images=[{"format": "squashfs", "file": "ext.raw",
                                                "path": Path("/out/ext.raw")}],
                             artifacts=[Path("/out/ext.sbom")], extra={})
        self.assertNotIn(secret, text)
        self.assertNotIn("DIB_PASSWORD", text)
        doc = json.loads(text)
        self.assertEqual(7, doc["settings"]["source_date_epoch"])
        self.assertEqual(["squashfs"], doc["settings"]["formats"])
        self.assertEqual([{"format": "squashfs", "file": "ext.raw"}], doc["images"],
                         "the host path of an image is not recorded")
        self.assertEqual(["ext.sbom"], doc["artifacts"])
