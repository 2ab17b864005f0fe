"""The bash completion script covers every parser and really completes in bash."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sysext_builder.cli import COMMANDS, completion
from tests.base import REPO_ROOT, TestCase, require

BASH = shutil.which("bash")


def _function(script: str, command: str) -> str:
    """The completion function registered for ``command``, with its complete line."""
    fn = completion.function_name(command)
    match = re.search(rf"^{fn}\(\) {{\n.*?^complete -F {fn} {re.escape(command)}$",
                      script, re.MULTILINE | re.DOTALL)
    if match is None:
        raise AssertionError(f"no completion function for {command} in the script")
    return match.group(0)


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


class TestScript(TestCase):

    parsers: dict[str, argparse.ArgumentParser]
    script: str

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.parsers = completion.command_parsers()
        cls.script = completion.bash_completion()

    def test_every_command_has_a_function(self) -> None:
        self.assertEqual(list(COMMANDS), list(self.parsers))
        for command in COMMANDS:
            self.assertIn(f"complete -F {completion.function_name(command)} {command}\n",
                          self.script)

    def test_every_option_string_is_completed_for_its_command(self) -> None:
        for command, parser in self.parsers.items():
            body = _function(self.script, command)
            words = re.search(r"if \[\[ \$cur == -\* \]\]; then\n\s*"
                              r"_sysext_builder_words_of '([^']*)'", body)
            self.assertIsNotNone(words, f"{command}: no option list")
            assert words is not None
            offered = words.group(1).split()
            for action in parser._actions:
                for opt in action.option_strings:
                    self.assertIn(opt, offered, f"{command}: {opt} is not completed")

    def test_choices_and_paths_complete_values(self) -> None:
        for command, parser in self.parsers.items():
            body = _function(self.script, command)
            for action in parser._actions:
                if not action.option_strings or action.nargs == 0:
                    continue
                case = next((line for line in body.splitlines()
                             if line.rstrip().endswith(";;")
                             and set(action.option_strings)
                             <= set(line.strip().partition(")")[0].split("|"))), None)
                self.assertIsNotNone(case, f"{command}: no case for {action.option_strings}")
                assert case is not None
                if action.choices is not None:
                    for choice in action.choices:
                        self.assertTrue(_has_word(case, str(choice)),
                                        f"{command}: choice {choice} of {action.dest}")
                elif action.metavar in ("FILE", "PATH"):
                    self.assertIn("_sysext_builder_files", case, f"{command} {action.dest}")
                elif action.metavar == "DIR":
                    self.assertIn("_sysext_builder_dirs", case, f"{command} {action.dest}")

    def test_element_names_only_with_an_element_list_option(self) -> None:
        info = self.parsers["sysext-element-info"]
        has_list = completion.ELEMENT_LIST_OPTION in completion.option_strings(info)
        self.assertEqual(has_list, "    _sysext_builder_elements\n" in self.script)

        fake = argparse.ArgumentParser(prog="sysext-element-info")
        fake.add_argument(completion.ELEMENT_LIST_OPTION, action="store_true")
        fake.add_argument("elements", metavar="ELEMENT", nargs="*")
        script = completion.bash_completion({"sysext-element-info": fake})
        self.assertIn("    _sysext_builder_elements\n",
                      _function(script, "sysext-element-info"))

    def test_bash_accepts_the_script(self) -> None:
        require("tools", BASH is not None, "bash is not installed")
        assert BASH is not None
        proc = subprocess.run([BASH, "-n"], input=self.script, text=True,
                              capture_output=True, check=False)
        self.assertEqual(0, proc.returncode, proc.stderr)


class TestInBash(TestCase):
    """Source the script and call the registered function as bash would."""

    script: str

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.script = completion.bash_completion()

    def complete(self, words: list[str], cwd: Path | None = None) -> list[str]:
        require("tools", BASH is not None, "bash is not installed")
        assert BASH is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "completion.bash"
            path.write_text(self.script, encoding="utf-8")
            program = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
                       'fn=$(complete -p "$1" | sed -E "s/.*-F ([^ ]+) .*/\\1/"); '
                       '"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; '
                       'printf "%s\\n" "${COMPREPLY[@]}"')
            proc = subprocess.run([BASH, "-c", program, "bash", str(path), *words],
                                  cwd=cwd, text=True, capture_output=True, check=False)
        self.assertEqual(0, proc.returncode, proc.stderr)
        return [line for line in proc.stdout.splitlines() if line]

    def test_option_prefix(self) -> None:
        self.assertIn("--checksum", self.complete(["sysext-create", "--ch"]))

    def test_short_options_are_offered(self) -> None:
        self.assertIn("-o", self.complete(["sysext-create", "-"]))

    def test_choices_with_and_without_equals(self) -> None:
        self.assertEqual(["portable"], self.complete(["sysext-check", "--scope", "p"]))
        self.assertEqual(["portable"], self.complete(["sysext-check", "--scope", "=", "p"]))

    def test_files_and_directories(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "os-release").write_text("ID=debian\n")
            (root / "elements").mkdir()
            self.assertEqual(["os-release"],
                             self.complete(["sysext-create", "--os-release", "os"], cwd=root))
            self.assertEqual(["elements"],
                             self.complete(["sysext-create", "--element-path", ""], cwd=root))

    def test_values_without_completion_offer_nothing(self) -> None:
        self.assertEqual([], self.complete(["sysext-create", "--jobs", ""]))


class TestMakeCompletion(TestCase):

    def test_writes_the_script_to_the_given_path(self) -> None:
        require("tools", BASH is not None, "bash is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sub" / "sysext-builder.bash"
            proc = subprocess.run([str(REPO_ROOT / "tools" / "make-completion"), str(out)],
                                  env={**os.environ, "PYTHON": sys.executable},
                                  text=True, capture_output=True, check=False)
            self.assertEqual(0, proc.returncode, proc.stderr)
            self.assertEqual(completion.bash_completion(), out.read_text(encoding="utf-8"))
            self.assertEqual([out.name], [p.name for p in out.parent.iterdir()])
