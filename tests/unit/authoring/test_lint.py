"""sysext-element-lint: every check finds what it looks for, with the right line.

Fixtures in tests/fixtures/lint/: ``elements/clean`` passes every check;
``elements/messy`` breaks nearly every one (the exact findings are listed
below); ``shadow-a/dup`` and ``shadow-b/dup`` share a name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import fixtures

from sysext_builder import paths
from sysext_builder.authoring.lint import check as lint
from sysext_builder.authoring.lint import files as lintfiles
from sysext_builder.authoring.lint import findings
from sysext_builder.authoring.lint import hooks as linthooks
from sysext_builder.errors import UsageError
from sysext_builder.model.element import SearchDir
from tests.base import REPO_ROOT, CLIResult, TestCase

LINT_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "lint"
CLEAN = LINT_FIXTURES / "elements" / "clean"
MESSY = LINT_FIXTURES / "elements" / "messy"

#: (path relative to messy/, line, code) of every finding of the messy element
MESSY_FINDINGS = {
    ("README.rst", None, "SB001"),
    ("element-deps", 2, "SB008"),
    ("element-deps", 3, "SB010"),
    ("element-provides", 2, "SB009"),
    ("environment.d/10-messy", None, "SB007"),
    ("environment.d/20-broken", 3, "SB023"),
    ("block-device.d", None, "SB020"),
    ("finalize.d", None, "SB020"),
    ("install.d/10-noexec", None, "SB002"),
    ("install.d/20-noshebang", 1, "SB005"),
    ("install.d/30-partial", 1, "SB006"),
    ("install.d/40-syntax", 5, "SB023"),
    ("install.d/hook.sh", None, "SB004"),
    ("install.d/messy-source-install/bad.hook", None, "SB004"),
    ("install.d/stray-dir", None, "SB018"),
    ("install.d/unnumbered", None, "SB003"),
    ("install.d/unnumbered", 1, "SB006"),
    ("package-installs.yaml", 4, "SB011"),
    ("pkg-map", 4, "SB012"),
    ("source-repository-messy", 2, "SB013"),
    ("static/boot", None, "SB016"),
    ("static/etc", None, "SB015"),
    ("static/var", None, "SB016"),
    ("test-elements/messy", None, "SB021"),
    ("test-elements/messy/README.rst", None, "SB001"),
    ("test-elements/messy/element-deps", None, "SB022"),
    ("test-elements/messy/expect", 2, "SB021"),
    ("test-elements/notes.txt", None, "SB022"),
    ("units", 3, "SB014"),
}


def where(found: list[findings.Finding], root: Path) -> set[tuple[str, int | None, str]]:
    return {(f.path.relative_to(root).as_posix(), f.line, f.code) for f in found}


class LintTestCase(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def write(self, rel: str, text: str, mode: int = 0o644) -> Path:
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def element(self, name: str = "elem") -> Path:
        self.write(f"{name}/README.rst", f"{name}\n====\n")
        return self.tmp / name


class TestFixtures(LintTestCase):

    def test_clean_element_has_no_findings(self) -> None:
        self.assertEqual([], lint.lint_element(CLEAN))

    def test_messy_element_has_exactly_these_findings(self) -> None:
        found = lint.lint_element(MESSY)
        self.assertEqual(MESSY_FINDINGS, where(found, MESSY))
        self.assertEqual(len(MESSY_FINDINGS), len(found))

    def test_messages_say_what_to_do(self) -> None:
        by_code = {(f.path.name, f.code): f.message for f in lint.lint_element(MESSY)
                   if "test-elements" not in f.path.parts}
        self.assertIn("did you mean 'uninstall'?",
                      by_code[("package-installs.yaml", "SB011")])
        self.assertIn("'chrony' must map to a string", by_code[("pkg-map", "SB012")])
        self.assertEqual("sh hook without 'set -eu -o pipefail' (missing -u, -o pipefail)",
                         by_code[("30-partial", "SB006")])
        self.assertEqual("element-deps is not sorted: 'alpha' comes after 'zeta'",
                         by_code[("element-deps", "SB008")])
        self.assertIn("found README.md", by_code[("README.rst", "SB001")])
        self.assertIn("did you mean 'finalise.d'?", by_code[("finalize.d", "SB020")])
        self.assertEqual("DIB phase block-device.d does not exist in sysext-builder; its "
                         "hooks never run", by_code[("block-device.d", "SB020")])
        self.assertIn("var/lib/messy/state", by_code[("var", "SB016")])

    def test_severity_comes_from_the_code(self) -> None:
        found = lint.lint_element(MESSY)
        self.assertEqual({"error": 20, "warning": 9}, lint.count(found))
        for finding in found:
            self.assertEqual(findings.CODES[finding.code][0], finding.severity)

    def test_every_code_is_documented_in_the_module(self) -> None:
        doc = lint.__doc__ or ""
        for code, (severity, _) in findings.CODES.items():
            self.assertRegex(doc, rf"{code}\s+{severity}\b")


class TestFinding(TestCase):

    def test_render_with_and_without_line(self) -> None:
        with_line = findings.Finding(Path("e/install.d/10-x"), 1, "SB006", "no set")
        self.assertEqual("e/install.d/10-x:1: error: SB006 no set", with_line.render())
        without = findings.Finding(Path("e/install.d/x"), None, "SB003", "no prefix")
        self.assertEqual("e/install.d/x: warning: SB003 no prefix", without.render())
        self.assertEqual({"path": "e/install.d/x", "line": None, "severity": "warning",
                          "code": "SB003", "message": "no prefix"}, without.as_dict())


class TestHooks(LintTestCase):

    def flags(self, text: str) -> set[str]:
        return linthooks.shell_flags(text) & {"e", "u", "pipefail"}

    def test_spellings_of_set_eu_pipefail(self) -> None:
        full = {"e", "u", "pipefail"}
        for text in ("#!/bin/bash\nset -eu -o pipefail\n",
                     "#!/bin/bash\nset -euo pipefail\n",
                     "#!/bin/bash\nset -e\nset -u\nset -o pipefail\n",
                     "#!/bin/bash\nset -o errexit -o nounset -o pipefail\n",
                     "#!/bin/bash -eu\nset -o pipefail\n",
                     "#!/bin/bash\nset -euxo pipefail  # trace too\n",
                     "#!/bin/bash\n  set -eu; set -o pipefail\n"):
            self.assertEqual(full, self.flags(text), text)

    def test_missing_options(self) -> None:
        self.assertEqual({"e"}, self.flags("#!/bin/bash\nset -e\n"))
        self.assertEqual(set(), self.flags("#!/bin/bash\necho set -eu -o pipefail\n"))
        self.assertEqual(set(), self.flags("#!/bin/bash\n# set -eu -o pipefail\n"))

    def test_interpreter(self) -> None:
        self.assertEqual("bash", linthooks.interpreter("#!/usr/bin/env bash"))
        self.assertEqual("bash", linthooks.interpreter("#!/usr/bin/env -S bash -e"))
        self.assertEqual("python3", linthooks.interpreter("#! /usr/bin/python3 -u"))
        self.assertEqual("", linthooks.interpreter("#!"))

    def test_hook_checks(self) -> None:
        good = self.write("e/install.d/10-good", "#!/bin/bash\nset -eu -o pipefail\n", 0o755)
        self.assertEqual([], linthooks.lint_hook(good))
        python = self.write("e/install.d/10-py", "#!/usr/bin/python3\nprint(1)\n", 0o755)
        self.assertEqual([], linthooks.lint_hook(python))
        elf = self.tmp / "e/install.d/20-binary"
        elf.write_bytes(b"\x7fELF\x02\x01\x01")
        elf.chmod(0o755)
        self.assertEqual([], linthooks.lint_hook(elf))
        dotted = self.write("e/install.d/10-x.disabled", "#!/bin/sh\nset -eu -o pipefail\n",
                            0o755)
        self.assertEqual([(None, "SB004")], [(f.line, f.code)
                                             for f in linthooks.lint_hook(dotted)])

    def test_install_type_directories(self) -> None:
        hook = "#!/bin/bash\nset -eu -o pipefail\n"
        self.write("e/install.d/e-package-install/10-pkg", hook, 0o755)
        self.write("e/install.d/e-source-install/10-src", hook + "if\n", 0o755)
        self.write("e/install.d/notatype/10-x", hook, 0o755)
        self.write("e/post-install.d/e-source-install/10-x", hook, 0o755)
        found = linthooks.lint_phase_dir(self.tmp / "e/install.d", "install.d")
        found += linthooks.lint_phase_dir(self.tmp / "e/post-install.d", "post-install.d")
        self.assertEqual({("install.d/e-source-install/10-src", 4, "SB023"),
                          ("install.d/notatype", None, "SB018"),
                          ("post-install.d/e-source-install", None, "SB018")},
                         where(found, self.tmp / "e"))

    def test_dangling_link_is_never_run(self) -> None:
        (self.tmp / "e/install.d").mkdir(parents=True)
        os.symlink("missing", self.tmp / "e/install.d/10-link")
        found = linthooks.lint_phase_dir(self.tmp / "e/install.d", "install.d")
        self.assertEqual([("10-link", "SB018")], [(f.path.name, f.code) for f in found])


class TestDeclarationLines(LintTestCase):
    """Errors of the YAML/JSON parsers are mapped to the line they are about."""

    def installs(self, text: str, name: str = "package-installs.yaml") -> list[tuple[int, str]]:
        element = self.element()
        self.write(f"elem/{name}", text)
        found = lintfiles.lint_declarations(element, sorted(os.listdir(element)))
        return [(f.line or 0, f.message) for f in found]

    def test_package_installs(self) -> None:
        self.assertEqual([], self.installs("a:\nb:\n  phase: install.d\n"))
        cases = {
            "a:\nb:\n  - arch: amd64\n  - phase: bogus.d\n": 4,
            "a:\nb:\n  arch: amd64\n  not-arch: arm64\n": 3,
            "a:\n  uninstall: maybe\n": 2,
            "a:\n\nb:\n  when: X == 1\n": 4,
            "a:\n'two words':\n": 2,
            "a:\nb: [\n": 3,
            "- a\n- b\n": 1,
            "a:\nb: 7\n": 2,
        }
        for text, line in cases.items():
            found = self.installs(text)
            self.assertEqual(1, len(found), text)
            self.assertEqual(line, found[0][0], (text, found))

    def test_package_installs_json(self) -> None:
        found = self.installs('{\n  "a": null,\n  "b": {"phase": "x"}\n}\n',
                              "package-installs.json")
        self.assertEqual(3, found[0][0])
        found = self.installs('{\n  "a": null,\n  "b": \n}\n', "package-installs.json")
        self.assertEqual(4, found[0][0])
        self.assertIn("invalid JSON", found[0][1])

    def pkg_map(self, text: str) -> list[tuple[int, str]]:
        element = self.element()
        self.write("elem/pkg-map", text)
        return [(f.line or 0, f.message) for f in
                lintfiles.lint_declarations(element, ["pkg-map"])]

    def test_pkg_map(self) -> None:
        cases = {
            '{\n "default": {"a": "b"},\n "famly": {}\n}\n': 3,
            '{\n "family": {\n  "debian": []\n }\n}\n': 3,
            '{\n "release": {\n  "ubuntu": {\n   "22.04": {\n    "a": "b",\n    "c": null\n'
            '   }\n  }\n }\n}\n': 6,
            '{\n "distro": {"debian": {"a": "b"}},\n "release": 3\n}\n': 3,
            '{\n "default": {"a": "b",}\n}\n': 2,
            '[1]\n': 1,
        }
        for text, line in cases.items():
            found = self.pkg_map(text)
            self.assertEqual(1, len(found), text)
            self.assertEqual(line, found[0][0], (text, found))

    def test_line_based_files_keep_their_lines(self) -> None:
        element = self.element()
        self.write("elem/source-repository-x", "# c\n\nx git /opt/x https://h/x\ny svn /y z\n")
        self.write("elem/units", "enable a.service\nenable not-a-unit\n")
        found = lintfiles.lint_declarations(element, sorted(os.listdir(element)))
        self.assertEqual({("source-repository-x", 4, "SB013"), ("units", 2, "SB014")},
                         where(found, element))


class TestElementLevel(LintTestCase):

    def test_invalid_element_name(self) -> None:
        element = self.element("-bad")
        self.assertEqual({(".", None, "SB019")}, where(lint.lint_element(element), element))

    def test_self_dependency(self) -> None:
        element = self.element()
        self.write("elem/element-deps", "a\nelem\n")
        self.assertEqual({("element-deps", 2, "SB009")},
                         where(lint.lint_element(element), element))

    def test_collisions_name_both_paths(self) -> None:
        search = [SearchDir(LINT_FIXTURES / "shadow-a", "--element-path"),
                  SearchDir(LINT_FIXTURES / "shadow-b", "ELEMENTS_PATH")]
        found = lint.lint([], search)
        self.assertEqual([("shadow-a/dup", "SB017"), ("shadow-b/dup", "SB017")],
                         [(f.path.relative_to(LINT_FIXTURES).as_posix(), f.code)
                          for f in found])
        a, b = (str(LINT_FIXTURES / d / "dup") for d in ("shadow-a", "shadow-b"))
        self.assertIn(f"also used by {b} (ELEMENTS_PATH); the search path uses this one",
                      found[0].message)
        self.assertIn(f"also used by {a} (--element-path); the search path uses {a} "
                      "(--element-path)", found[1].message)

    def test_no_collision_with_itself(self) -> None:
        search = [SearchDir(LINT_FIXTURES / "elements", "--element-path")]
        self.assertEqual([], lint.lint([CLEAN], search))

    def test_targets(self) -> None:
        self.assertEqual([CLEAN], lint.targets([CLEAN]))
        self.assertEqual([CLEAN, MESSY], lint.targets([LINT_FIXTURES / "elements"]))
        only_readme = self.element("plain")
        (only_readme / "files").mkdir()
        self.assertEqual([only_readme], lint.targets([only_readme]))
        self.write("many/README.rst", "about these elements\n")
        self.write("many/one/README.rst", "one\n")
        self.assertEqual([self.tmp / "many/one"], lint.targets([self.tmp / "many"]))
        self.assertRaises(UsageError, lint.targets, [self.tmp / "nope"])


class TestBuiltinElements(TestCase):

    def test_builtin_elements_pass_lint_without_a_warning(self) -> None:
        # The one place the repository's element rules are checked: README,
        # hook names and modes, shell flags, sorted element-deps, ... are the
        # linter's rules, so the built-in elements are held to exactly those.
        builtin = paths.builtin_elements_dir()
        found = lint.lint([builtin], [SearchDir(builtin, "built-in")])
        self.assertEqual([], [f.render() for f in found])


class TestCLI(TestCase):

    def run_lint(self, *argv: str) -> CLIResult:
        from sysext_builder.cli import lint as cli_lint

        self.isolate_search_path()
        self._restore_root_logger()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_lint.main(list(argv))
        return CLIResult(code, out.getvalue(), err.getvalue())

    def test_errors_exit_17(self) -> None:
        result = self.run_lint(str(MESSY))
        self.assertEqual(17, result.code)
        self.assertEqual(len(MESSY_FINDINGS), len(result.stdout.splitlines()))
        self.assertIn(f"{MESSY}/units:3: error: SB014 expected 'enable UNIT [TARGET]'",
                      result.stdout)
        self.assertIn("sysext-element-lint: error: 20 error(s), 9 warning(s)", result.stderr)

    def test_only_warnings_exit_0(self) -> None:
        result = self.run_lint("--element-path", str(LINT_FIXTURES / "shadow-a"),
                               "--element-path", str(LINT_FIXTURES / "shadow-b"))
        self.assertEqual((0, ""), (result.code, result.stderr))
        self.assertEqual(2, len(result.stdout.splitlines()))
        self.assertIn(": warning: SB017 ", result.stdout)

    def test_clean_prints_nothing(self) -> None:
        self.assertEqual((0, "", ""), tuple(vars(self.run_lint(str(CLEAN))).values()))

    def test_json(self) -> None:
        result = self.run_lint("--json", str(MESSY))
        doc = json.loads(result.stdout)
        self.assertEqual((20, 9), (doc["errors"], doc["warnings"]))
        self.assertIn({"path": f"{MESSY}/pkg-map", "line": 4, "severity": "error",
                       "code": "SB012",
                       "message": "default: 'chrony' must map to a string (\"\" to skip), "
                                  "not 1"}, doc["findings"])

    def test_missing_dir_is_a_usage_error(self) -> None:
        result = self.run_lint("/nonexistent/elements")
        self.assertEqual(2, result.code)
        self.assertIn("not a directory", result.stderr)


class TestHostileElements(LintTestCase):
    """Lint never opens a fifo or a device, nor chokes on names that are not UTF-8."""

    def test_fifos_and_devices_are_findings_not_hangs(self) -> None:
        elem = self.element()
        (elem / "environment.d").mkdir()
        (elem / "finalise.d").mkdir()
        for rel in ("units", "pkg-map", "environment.d/10-f", "finalise.d/10-f"):
            os.mkfifo(elem / rel)
        os.symlink("/dev/zero", elem / "source-repository-z")
        os.symlink("/dev/zero", elem / "element-deps")
        self.assertEqual({("element-deps", None, "SB009"), ("environment.d/10-f", None, "SB024"),
                          ("finalise.d/10-f", None, "SB018"), ("pkg-map", None, "SB024"),
                          ("source-repository-z", None, "SB024"), ("units", None, "SB024")},
                         where(lint.lint_element(elem), elem))

    def test_oversized_declaration_is_not_loaded(self) -> None:
        elem = self.element()
        with open(elem / "package-installs.yaml", "wb") as f:
            f.truncate(lintfiles.MAX_FILE_BYTES + 1)
        found = lint.lint_element(elem)
        self.assertEqual({("package-installs.yaml", None, "SB024")}, where(found, elem))
        self.assertIn("larger than", found[0].message)

    def test_hook_fifo_raced_in_is_not_opened(self) -> None:
        os.mkfifo(self.tmp / "fifo")
        found = linthooks.lint_hook(self.tmp / "fifo")
        self.assertIn("SB024", [f.code for f in found])

    def test_non_utf8_hook_name_and_bash_error_are_findings(self) -> None:
        if paths.which("bash") is None:
            self.skipTest("bash not installed")
        elem = self.element()
        (elem / "install.d").mkdir()
        bad = os.fsencode(elem / "install.d") + b"/10-x\xff"
        with open(bad, "wb") as f:
            f.write(b"#!/bin/bash\nset -eu -o pipefail\nif then \xff\n")
        os.chmod(bad, 0o755)
        found = lint.lint_element(elem)
        self.assertEqual({("install.d/10-x\udcff", None, "SB004"),
                          ("install.d/10-x\udcff", 3, "SB023")}, where(found, elem))

    def test_cli_reports_non_utf8_names(self) -> None:
        elem = self.element()
        (elem / "install.d").mkdir()
        bad = os.fsencode(elem / "install.d") + b"/bad\xff"
        with open(bad, "wb") as f:
            f.write(b"#!/bin/sh\nset -eu -o pipefail\n")
        os.chmod(bad, 0o755)
        result = TestCLI.run_lint(self, str(elem))  # type: ignore[arg-type]
        self.assertEqual(17, result.code, result.stderr)
        self.assertIn("SB004 hook name 'bad\\udcff' is never run", result.stdout)
