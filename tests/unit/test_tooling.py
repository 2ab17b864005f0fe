"""tox.ini, tools/ and the Sphinx set-up agree with tools/test and the parsers.

tools/test is what CI runs; tox.ini offers the same steps one environment
each.  The commands are read out of both files and compared, so neither can
change without the other.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import runpy
import shlex
import shutil
import subprocess
from typing import Any

from sysext_builder.cli import COMMANDS
from sysext_builder.cli.completion import command_parsers
from tests.base import REPO_ROOT, TestCase, require

TOOLS = REPO_ROOT / "tools"
ENVS = ("unit", "functional", "pep8", "docs")
#: tox environment -> the stestr filter it runs by default
TEST_FILTERS = {"unit": "tests.unit", "functional": "tests.functional"}
_SH_DEFAULT = re.compile(r'"?\$\{(\w+):-([^}]*)\}"?')  # "${VAR:-default}"
_TOX_ENV = re.compile(r"\{env:(\w+):([^}]*)\}")  # {env:VAR:default}
_TOX_POSARGS = re.compile(r"\{posargs(?::([^}]*))?\}")


def script_steps(text: str) -> list[tuple[str, list[str]]]:
    """tools/test as (log message, commands run under it), in order.

    Commands are normalised: ``"${VAR:-x}"`` -> ``$VAR:x``, ``"$@"`` ->
    ``{posargs}``, and ``|| rc=...`` bookkeeping dropped; assignments and
    ``exit`` are not commands.
    """
    steps: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        log = re.fullmatch(r'log\s+"([^"]*)"', line)
        if log:
            steps.append((log.group(1), []))
            continue
        if not steps or not line or line.startswith("#") or line.startswith("exit "):
            continue
        if re.fullmatch(r"\w+=\S*", line):
            continue
        line = re.sub(r"\s*\|\|\s*rc=\S+$", "", line)
        line = _SH_DEFAULT.sub(r"$\1:\2", line).replace('"$@"', "{posargs}")
        steps[-1][1].append(" ".join(line.split()))
    return steps


def tox_commands(value: str) -> tuple[list[str], list[str]]:
    """A tox ``commands`` value -> (normalised commands, posargs defaults).

    ``{toxinidir}/`` is dropped, ``{env:VAR:x}`` -> ``$VAR:x``,
    ``{posargs:x}`` -> ``{posargs}`` and ``bash -c 'CMD'`` -> CMD.
    """
    commands, defaults = [], []
    for raw in value.strip().splitlines():
        line = raw.strip().replace("{toxinidir}/", "")
        if not line:
            continue
        argv = shlex.split(line)
        if argv[:2] == ["bash", "-c"] and len(argv) == 3:
            line = argv[2]
        defaults += [m.group(1) for m in _TOX_POSARGS.finditer(line) if m.group(1)]
        line = _TOX_POSARGS.sub("{posargs}", _TOX_ENV.sub(r"$\1:\2", line))
        commands.append(" ".join(line.split()))
    return commands, defaults


def _read_tox() -> configparser.ConfigParser:
    tox = configparser.ConfigParser(interpolation=None)
    with open(REPO_ROOT / "tox.ini", encoding="utf-8") as f:
        tox.read_file(f)
    return tox


class TestToxMatchesToolsTest(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tox = _read_tox()
        self.steps = script_steps((TOOLS / "test").read_text(encoding="utf-8"))
        self.script = [c for _log, cmds in self.steps for c in cmds]

    def env(self, name: str) -> tuple[list[str], list[str]]:
        section = f"testenv:{name}"
        self.assertTrue(self.tox.has_section(section), f"tox.ini has no [{section}]")
        return tox_commands(self.tox.get(section, "commands"))

    def test_tools_test_is_read(self) -> None:
        logs = [log for log, _cmds in self.steps]
        for step in ("ruff check", "mypy --strict sysext_builder", "docs", "stestr run"):
            self.assertIn(step, logs)
        self.assertLess(logs.index("mypy --strict sysext_builder"), logs.index("docs"))
        self.assertLess(logs.index("docs"), logs.index("stestr run"))
        self.assertIn("tools/build-docs", dict(self.steps)["docs"])

    def test_envlist_has_every_env(self) -> None:
        envlist = [e.strip() for e in self.tox.get("tox", "envlist").split(",")]
        self.assertEqual(sorted(ENVS), sorted(envlist))

    def test_each_env_runs_commands_of_tools_test_in_its_order(self) -> None:
        for name in ENVS:
            commands, _defaults = self.env(name)
            self.assertTrue(commands, f"tox -e {name} runs nothing")
            for command in commands:
                self.assertIn(command, self.script, f"tox -e {name}: {command!r} is not "
                              f"what tools/test runs ({self.script})")
            positions = [self.script.index(c) for c in commands]
            self.assertEqual(sorted(positions), positions, f"tox -e {name}: order")

    def test_every_tools_test_command_is_in_an_env(self) -> None:
        covered = {c for name in ENVS for c in self.env(name)[0]}
        self.assertEqual([], [c for c in self.script if c not in covered])

    def test_envs_run_their_part_of_the_suite(self) -> None:
        self.assertEqual(["ruff check sysext_builder tests bench tools/test-summary",
                          "mypy --strict sysext_builder"], self.env("pep8")[0])
        self.assertEqual(["tools/build-docs"], self.env("docs")[0])
        for name, test_filter in TEST_FILTERS.items():
            commands, defaults = self.env(name)
            self.assertEqual([test_filter], defaults, f"tox -e {name}")
            self.assertTrue(commands[0].startswith("stestr run "), f"tox -e {name}")

    def test_dependencies_and_install(self) -> None:
        deps = self.tox.get("testenv", "deps").split()
        self.assertEqual(["-r{toxinidir}/requirements.txt",
                          "-r{toxinidir}/test-requirements.txt"], deps)
        self.assertTrue(self.tox.getboolean("testenv", "usedevelop"))
        self.assertIn("STESTR_CONCURRENCY", self.tox.get("testenv", "passenv").split())


class TestTools(TestCase):

    def test_scripts_are_strict_executable_bash(self) -> None:
        for name in ("build-docs", "make-completion", "test"):
            path = TOOLS / name
            self.assertTrue(path.stat().st_mode & 0o111, f"tools/{name} is not executable")
            text = path.read_text(encoding="utf-8")
            self.assertTrue(text.startswith("#!/bin/bash\n"), f"tools/{name}")
            self.assertIn("set -eu -o pipefail", text, f"tools/{name}")
            if shutil.which("bash"):
                proc = subprocess.run(["bash", "-n", str(path)], capture_output=True,
                                      text=True, check=False)
                self.assertEqual(0, proc.returncode, f"tools/{name}: {proc.stderr}")

    def test_build_docs_uses_warnings_as_errors_for_both_builders(self) -> None:
        text = (TOOLS / "build-docs").read_text(encoding="utf-8")
        self.assertIn("-W --keep-going", text)
        self.assertRegex(text, r"for builder in html man\b")

    def test_build_output_is_ignored(self) -> None:
        lines = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()
        self.assertTrue({"build/", "/build/"} & set(lines))


class TestManPages(TestCase):
    """doc/conf.py: one man page per command, each rendered from its parser."""

    conf: dict[str, Any]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.conf = {}
        if importlib.util.find_spec("sphinx") is not None:
            cls.conf = runpy.run_path(str(REPO_ROOT / "doc" / "conf.py"))

    def setUp(self) -> None:
        super().setUp()
        require("tools", bool(self.conf), "sphinx is not installed")

    def test_a_man_page_per_command(self) -> None:
        pages = {name: (source, section) for source, name, _d, _a, section
                 in self.conf["man_pages"]}
        self.assertEqual(sorted(COMMANDS), sorted(pages))
        for command, (source, section) in pages.items():
            self.assertEqual((f"man/{command}", 1), (source, section))
            text = (REPO_ROOT / "doc" / f"{source}.rst").read_text(encoding="utf-8")
            for heading in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"):
                self.assertIn(f"\n{heading}\n", text, f"doc/{source}.rst")
            for part in self.conf["_PARTS"]:
                self.assertIn(f".. sysext-cli:: {command}\n   :part: {part}\n", text,
                              f"doc/{source}.rst does not render {part} from the parser")

    def test_every_part_renders_from_every_parser(self) -> None:
        for command, parser in command_parsers().items():
            options = "\n".join(n.astext() for n in self.conf["_options"](parser))
            for action in parser._actions:
                for opt in action.option_strings:
                    self.assertIn(opt, re.split(r"[\s,]+", options), f"{command}: {opt}")
            codes = self.conf["_exit_status"](parser)[0]
            self.assertIn("0", [t.astext() for t in codes.findall(
                lambda n: n.tagname == "term")], command)
            usage = self.conf["_usage"](parser)[0].astext()
            self.assertTrue(usage.startswith(command + " "), usage)
            self.assertTrue(self.conf["_description"](parser), command)

    def test_root_toctree_lists_every_page(self) -> None:
        pages = {p.stem for p in (REPO_ROOT / "doc").glob("*.rst")} - {"index"}
        self.assertEqual(pages | {"man/index"}, set(self.conf["TOCTREE"]))
