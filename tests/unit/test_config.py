"""BuildConfig helpers: output splitting, epoch, formats, user variables."""

from __future__ import annotations

from pathlib import Path

import fixtures
import testtools

from sysext_builder import config
from sysext_builder.errors import UsageError


class TestConfig(testtools.TestCase):

    def test_split_output_dir_and_name(self) -> None:
        self.assertEqual((Path("out"), "oem-azure"), config.split_output("out/oem-azure", None))
        self.assertEqual((Path("out"), "oem-azure"),
                         config.split_output("out/oem-azure.raw", "x"))
        self.assertEqual((Path("."), "x"), config.split_output(None, "x"))
        self.assertEqual((Path("out"), "dflt"), config.split_output("out/", "dflt"))

    def test_existing_directory_takes_default_name(self) -> None:
        top = self.useFixture(fixtures.TempDir()).path
        self.assertEqual((Path(top), "dflt"), config.split_output(top, "dflt"))

    def test_no_name_is_a_usage_error_with_hint(self) -> None:
        err = self.assertRaises(UsageError, config.split_output, None, None)
        self.assertIn("-o", err.message)
        self.assertIn("SYSEXT_DEFAULT_NAME", err.hint or "")

    def test_epoch(self) -> None:
        self.assertEqual(0, config.epoch_from({}))
        self.assertEqual(1700000000, config.epoch_from({"SOURCE_DATE_EPOCH": "1700000000"}))
        self.assertRaises(UsageError, config.epoch_from, {"SOURCE_DATE_EPOCH": "yesterday"})
        self.assertRaises(UsageError, config.epoch_from, {"SOURCE_DATE_EPOCH": "-5"})

    def test_formats(self) -> None:
        self.assertEqual(("squashfs", "erofs"), config.parse_formats("squashfs, erofs,squashfs"))
        self.assertRaises(UsageError, config.parse_formats, " , ")

    def test_user_variables_are_only_dib_ones(self) -> None:
        cfg = config.BuildConfig(elements=("a",), environ={
            "DIB_X": "1", "SECRET": "s", "DIB_REPOLOCATION_glean": "/g", "PATH": "/bin"})
        self.assertEqual({"DIB_REPOLOCATION_glean": "/g", "DIB_X": "1"}, cfg.user_variables())
