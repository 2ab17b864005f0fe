"""BuildConfig helpers: output splitting, epoch, formats, user variables."""

from __future__ import annotations

import argparse
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


class TestOptionsTable(testtools.TestCase):
    """One table drives the parser, --config options and the --jobs children."""

    def parser_options(self) -> dict[str, argparse.Action]:
        from sysext_builder.cli import create

        return {s: a for a in create.build_parser()._actions for s in a.option_strings}

    def test_parser_has_every_option_of_the_table_and_no_other(self) -> None:
        actions = self.parser_options()
        for option in config.OPTIONS:
            self.assertIn(option.flag, actions)
            action = actions[option.flag]
            self.assertEqual(option.dest, action.dest)
            if option.short:
                self.assertIs(action, actions[option.short])
            if not option.common:
                self.assertEqual(option.help, action.help)
                self.assertEqual(option.kind == "flag", action.nargs == 0)
        own = {"--help", "-h", "--version"}
        declared = {n for o in config.OPTIONS for n in (o.flag, o.short) if n}
        self.assertEqual(set(actions) - own, declared)

    def test_parsed_values_give_the_build_config(self) -> None:
        from sysext_builder.cli import create

        args = create.build_parser().parse_args(
            ["a", "b", "-t", "erofs,directory", "--base", "rel/base", "--strict", "-x",
             "--element-path", "one", "--element-path", "two", "--os-id", "debian",
             "--cache-dir", "/c", "--offline"])
        cfg = config.from_values(vars(args), elements=args.elements,
                                 environ={"SOURCE_DATE_EPOCH": "7", "DIB_X": "1"})
        self.assertEqual(config.BuildConfig(
            elements=("a", "b"), formats=("erofs", "directory"), base=Path("rel/base"),
            strict=True, trace=True, element_paths=("one", "two"), os_id="debian",
            cache_dir=Path("/c"), offline=True, epoch=7,
            environ={"SOURCE_DATE_EPOCH": "7", "DIB_X": "1"}), cfg)

    def test_children_inherit_identity_discovery_and_running_options(self) -> None:
        from sysext_builder.cli import create

        args = create.build_parser().parse_args(
            ["--config", "x.yaml", "-j", "2", "-o", "out/", "-t", "erofs", "--base", "b",
             "--element-path", "e", "--debug", "--checksum", "--os-version-id", "12",
             "--logfile", "log", "--sysupdate", "u", "--image-version", "1"])
        argv = config.inherited_argv(vars(args))
        self.assertEqual(["--checksum", "--os-version-id", "12",
                          "--base", str(Path("b").absolute()),
                          "--element-path", str(Path("e").absolute()), "--debug"], argv)

    def test_per_image_options_are_those_an_image_may_differ_in(self) -> None:
        self.assertEqual({"compression", "checksum", "arch", "os-release", "os-id",
                          "os-version-id", "sysext-level", "scope", "target-systemd", "base",
                          "strict", "oem-partition", "no-activate"},
                         set(config.per_image_options()))

    def test_oem_partition_options_give_the_build_config(self) -> None:
        from sysext_builder.cli import create

        parser = create.build_parser()
        args = parser.parse_args(["qemu-oem", "--oem-partition", "part", "--no-activate"])
        cfg = config.from_values(vars(args), elements=args.elements, environ={})
        self.assertEqual(Path("part"), cfg.oem_partition)
        self.assertTrue(cfg.oem_no_activate)
        args = parser.parse_args(["qemu-oem"])
        cfg = config.from_values(vars(args), elements=args.elements, environ={})
        self.assertIsNone(cfg.oem_partition)
        self.assertFalse(cfg.oem_no_activate)
        self.assertEqual(["--oem-partition", str(Path("part").absolute())],
                         config.option_argv(config.BY_NAME["oem-partition"], "part"))
        self.assertNotIn("--oem-partition", config.inherited_argv(
            {"oem_partition": "part", "no_activate": True}), "one partition per image")

    def test_option_argv(self) -> None:
        flag, path = config.BY_NAME["strict"], config.BY_NAME["base"]
        self.assertEqual([], config.option_argv(flag, False))
        self.assertEqual(["--strict"], config.option_argv(flag, True))
        self.assertEqual([], config.option_argv(path, None))
        self.assertEqual(["--base", "/abs/b"], config.option_argv(path, "/abs/b"))
