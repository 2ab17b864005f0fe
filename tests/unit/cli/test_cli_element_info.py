"""sysext-element-info: output formats, exit codes and error reporting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fixtures
import yaml

from tests.base import CLIResult, TestCase, fixture_dir, run_module, write_tree

PROG = "sysext-element-info"
BAD_NAME_HINT = ("one name per line: letters, digits and '_.+-', not starting with "
                 "punctuation; '#' starts a comment")


class CLITestCase(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.builtin = self.isolate_search_path()

    def run_on(self, scenario: str, *args: str) -> CLIResult:
        return self.run_cli(["--element-path", str(fixture_dir(scenario)), *args])

    def assertFails(self, result: CLIResult, code: int, message: str,
                    hint: str | None = None) -> None:
        """Exit ``code``, nothing on stdout, one error line and an optional hint line."""
        expected = [f"{PROG}: error: {message}"]
        if hint is not None:
            expected.append(f"{PROG}: hint: {hint}")
        self.assertEqual((code, "", expected), (result.code, result.stdout,
                                                result.stderr_lines()))
        self.assertNotIn("Traceback", result.stderr)


class TestOutput(CLITestCase):

    def test_text(self) -> None:
        base = fixture_dir("basic")
        result = self.run_on("basic", "app")
        self.assertEqual((0, ""), (result.code, result.stderr))
        self.assertEqual(
            f"base-files  {base}/base-files  [--element-path]\n"
            f"lib-a       {base}/lib-a  [--element-path]\n"
            f"lib-b       {base}/lib-b  [--element-path]\n"
            f"app         {base}/app  [--element-path]\n", result.stdout)

    def test_text_names_virtual_providers(self) -> None:
        result = self.run_on("provides", "image-glean")
        self.assertEqual(0, result.code)
        lines = result.stdout.splitlines()
        self.assertEqual(["base-lib", "glean", "util", "tools", "image", "image-glean"],
                         [line.split()[0] for line in lines[:-1]])
        self.assertEqual("# network-config is provided by glean", lines[-1])

    def test_text_lists_target_requirements(self) -> None:
        tree = Path(self.useFixture(fixtures.TempDir()).path)
        write_tree(tree, {"needy": {"deps": ["plain"], "target-requires": "python3\n"},
                          "plain": {}})
        result = self.run_cli(["--element-path", str(tree), "needy"])
        self.assertEqual((0, ""), (result.code, result.stderr))
        self.assertEqual("# needy needs on the target: python3", result.stdout.splitlines()[-1])
        result = self.run_cli(["--element-path", str(tree), "--json", "needy"])
        by_name = {e["name"]: e for e in json.loads(result.stdout)["elements"]}
        self.assertEqual((["python3"], []), (by_name["needy"]["target_requires"],
                                             by_name["plain"]["target_requires"]))

    def test_json(self) -> None:
        root = fixture_dir("provides")
        result = self.run_on("provides", "--json", "image-glean")
        self.assertEqual((0, ""), (result.code, result.stderr))
        doc = json.loads(result.stdout)
        self.assertEqual({"requested", "elements", "virtual"}, set(doc))
        self.assertEqual(["image-glean"], doc["requested"])
        self.assertEqual({"network-config": "glean"}, doc["virtual"])
        by_name = {e["name"]: e for e in doc["elements"]}
        self.assertEqual(["base-lib", "glean", "util", "tools", "image", "image-glean"],
                         [e["name"] for e in doc["elements"]])
        for element in doc["elements"]:
            self.assertEqual({"name", "path", "origin", "deps", "provides",
                              "target_requires", "why_selected", "chain"}, set(element))
            self.assertEqual(str(root / element["name"]), element["path"])
            self.assertEqual("--element-path", element["origin"])
        self.assertEqual({"name": "glean", "path": str(root / "glean"),
                          "origin": "--element-path", "deps": ["base-lib"],
                          "provides": ["network-config"], "target_requires": [],
                          "why_selected": "required by image-glean -> glean",
                          "chain": ["image-glean", "glean"]}, by_name["glean"])
        self.assertEqual("requested", by_name["image-glean"]["why_selected"])
        self.assertEqual(["tools", "network-config"], by_name["image"]["deps"])
        self.assertEqual("required by image-glean -> glean -> base-lib",
                         by_name["base-lib"]["why_selected"])

    def test_graph_is_dot(self) -> None:
        result = self.run_on("provides", "--graph", "image-glean")
        self.assertEqual((0, ""), (result.code, result.stderr))
        self.assertEqual('\n'.join([
            'digraph elements {',
            '  rankdir=LR;',
            '  "base-lib";',
            '  "glean";',
            '  "util";',
            '  "tools";',
            '  "image";',
            '  "image-glean" [shape=box, style=bold];',
            '  "glean" -> "base-lib";',
            '  "image" -> "glean" [label="network-config", style=dashed];',
            '  "image" -> "tools";',
            '  "image-glean" -> "glean";',
            '  "image-glean" -> "image";',
            '  "tools" -> "base-lib";',
            '  "tools" -> "util";',
            '  "util" -> "base-lib";',
            '}']) + "\n", result.stdout)

    def test_why(self) -> None:
        result = self.run_on("provides", "--why", "base-lib", "image-glean")
        self.assertEqual((0, ""), (result.code, result.stderr))
        self.assertEqual("image-glean -> glean -> base-lib\n"
                         "image-glean -> image -> glean -> base-lib\n"
                         "image-glean -> image -> tools -> base-lib\n"
                         "image-glean -> image -> tools -> util -> base-lib\n", result.stdout)

    def test_why_virtual_name(self) -> None:
        result = self.run_on("provides", "--why", "network-config", "image-glean")
        self.assertEqual("image-glean -> glean\nimage-glean -> image -> glean\n", result.stdout)

    def test_why_not_selected(self) -> None:
        result = self.run_on("provides", "--why", "dhcp-client", "image-glean")
        self.assertFails(result, 2, "'dhcp-client' is not part of this selection",
                         "selected: base-lib, glean, util, tools, image, image-glean")

    def test_env_is_valid_bash(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        root = write_tree(tmp / "it's a dir with $pace", {"top": {"deps": ["dep"]}, "dep": {}})
        result = self.run_cli(["--element-path", str(root), "--env", "top"])
        self.assertEqual((0, ""), (result.code, result.stderr))
        out = tmp / "out"
        out.write_text(result.stdout)
        script = ('eval "$(cat "$1")"; echo "$IMAGE_ELEMENT"; '
                  'eval declare -A a=($(get_image_element_array)); '
                  'echo "${a[top]}"; echo "${a[dep]}"; echo "${#a[@]}"; '
                  'bash -c \'get_image_element_array >/dev/null && echo exported\'; '
                  'printf "%s" "$IMAGE_ELEMENT_YAML"')
        proc = subprocess.run(["bash", "-c", script, "bash", str(out)], capture_output=True,
                              text=True, check=False)
        self.assertEqual((0, ""), (proc.returncode, proc.stderr))
        lines = proc.stdout.splitlines()
        self.assertEqual(["dep top", str(root / "top"), str(root / "dep"), "2", "exported"],
                         lines[:5])
        self.assertEqual({"dep": str(root / "dep"), "top": str(root / "top")},
                         yaml.safe_load("\n".join(lines[5:])))

    def test_version(self) -> None:
        result = self.run_cli(["--version"])
        self.assertEqual(0, result.code)
        self.assertRegex(result.stdout, rf"^{PROG} \S+\n$")

    def test_help_lists_exit_codes(self) -> None:
        result = self.run_cli(["--help"])
        self.assertEqual(0, result.code)
        self.assertIn("14 dependency cycle", result.stdout)
        self.assertIn("--element-path DIR", result.stdout)


class TestExitCodes(CLITestCase):

    def test_usage_no_element(self) -> None:
        result = self.run_cli([])
        self.assertEqual((2, ""), (result.code, result.stdout))
        self.assertIn(f"{PROG}: error: the following arguments are required: ELEMENT",
                      result.stderr)

    def test_usage_exclusive_formats(self) -> None:
        result = self.run_on("basic", "--json", "--graph", "app")
        self.assertEqual(2, result.code)
        self.assertIn("--graph: not allowed with argument --json", result.stderr)

    def test_usage_unknown_option(self) -> None:
        result = self.run_on("basic", "--bogus", "app")
        self.assertEqual(2, result.code)
        self.assertIn(f"{PROG}: error: unrecognized arguments: --bogus", result.stderr)

    def test_malformed_element_file(self) -> None:
        deps = fixture_dir("badformat") / "bad" / "element-deps"
        self.assertFails(self.run_on("badformat", "bad"), 10,
                         f"{deps}:4: invalid element name 'bad name!'", BAD_NAME_HINT)

    def test_missing_dependency(self) -> None:
        self.assertFails(self.run_on("missing", "a"), 11,
                         "element 'nosuch' not found (required by a -> b -> nosuch)",
                         f"did you mean 'no-such'?; searched: {fixture_dir('missing')}, "
                         f"{self.builtin}")

    def test_missing_requested(self) -> None:
        self.assertFails(self.run_on("missing", "b", "glean-nx"), 11,
                         "element 'glean-nx' not found (requested)",
                         "did you mean 'glean-nm' or 'glean-nd'?; searched: "
                         f"{fixture_dir('missing')}, {self.builtin}")

    def test_missing_provider(self) -> None:
        self.assertFails(self.run_on("missing", "needs-net"), 12,
                         "'network-config' needed by needs-net is provided by no selected "
                         "element (required by needs-net -> network-config)",
                         "known providers: glean-nd, glean-nm; add one of them to the build")

    def test_two_providers(self) -> None:
        self.assertFails(self.run_on("conflict", "both"), 13,
                         "'net' is provided by more than one selected element: "
                         "one (via both -> one) and two (via both -> two)",
                         "select only one of them")

    def test_requested_and_provided(self) -> None:
        self.assertFails(self.run_on("conflict", "net-real", "provider"), 13,
                         "'net-real' was requested but is also provided by provider (requested)",
                         "drop 'net-real' from the request or the element that provides it")

    def test_cycle(self) -> None:
        self.assertFails(self.run_on("cycle", "top"), 14, "dependency cycle: a -> b -> c -> a",
                         "remove one of these element-deps entries")

    def test_debug_shows_traceback(self) -> None:
        result = self.run_on("cycle", "--debug", "top")
        self.assertEqual((14, ""), (result.code, result.stdout))
        self.assertIn("Traceback (most recent call last)", result.stderr)
        self.assertIn("DependencyCycleError: dependency cycle: a -> b -> c -> a", result.stderr)
        self.assertEqual([f"{PROG}: error: dependency cycle: a -> b -> c -> a",
                          f"{PROG}: hint: remove one of these element-deps entries"],
                         result.stderr_lines()[-2:])

    def test_warnings_go_to_stderr(self) -> None:
        a, b = fixture_dir("override-a"), fixture_dir("override-b")
        result = self.run_cli(["--element-path", str(a), "--element-path", str(b), "common"])
        self.assertEqual(0, result.code)
        self.assertIn(f"WARNING element common: {a / 'common'} (--element-path) overrides "
                      f"{b / 'common'} (--element-path)", result.stderr)
        self.assertEqual(["only-a", "common"], [ln.split()[0] for ln in
                                                result.stdout.splitlines()])


class TestSubprocess(TestCase):
    """The real process: exit statuses, tracebacks and what gets imported."""

    def test_no_traceback_without_debug(self) -> None:
        proc = run_module(["sysext-element-info", "--element-path",
                           str(fixture_dir("cycle")), "top"])
        stderr = proc.stderr.decode()
        self.assertEqual((14, b""), (proc.returncode, proc.stdout))
        self.assertNotIn("Traceback", stderr)
        self.assertEqual([f"{PROG}: error: dependency cycle: a -> b -> c -> a",
                          f"{PROG}: hint: remove one of these element-deps entries"],
                         stderr.splitlines())

    def test_traceback_with_debug(self) -> None:
        proc = run_module(["sysext-element-info", "--debug", "--element-path",
                           str(fixture_dir("conflict")), "both"])
        self.assertEqual(13, proc.returncode)
        self.assertIn(b"Traceback (most recent call last)", proc.stderr)

    def test_unknown_command(self) -> None:
        proc = run_module(["no-such-command"])
        self.assertEqual(2, proc.returncode)
        self.assertRegex(proc.stderr.decode(),
                         r"^usage: python -m sysext_builder \{[^}]*sysext-element-info")

    def imported(self, *args: str) -> str:
        proc = run_module(["sysext-element-info", *args], python_args=["-X", "importtime"])
        self.assertEqual(0, proc.returncode, proc.stderr.decode()[-2000:])
        return proc.stderr.decode()

    def test_help_and_version_stay_light(self) -> None:
        for option in ("--help", "--version"):
            stderr = self.imported(option)
            # importtime works (import_module itself is not timed, its imports are)
            self.assertIn("sysext_builder.cli.common", stderr)
            self.assertNotIn("networkx", stderr, option)
            self.assertNotIn("stevedore", stderr, option)

    def test_graph_output_does_import_networkx(self) -> None:
        # The control for the test above: importtime does show networkx when used.
        stderr = self.imported("--element-path", str(fixture_dir("basic")), "--graph", "app")
        self.assertIn("networkx", stderr)

    def test_plain_resolution_does_not_import_networkx(self) -> None:
        # The build order comes from a heap-based sort proven equal to networkx's
        # lexicographical_topological_sort (test_graph); networkx loads only for
        # --graph, --why and cycle reports.
        stderr = self.imported("--element-path", str(fixture_dir("basic")), "app")
        self.assertNotIn("networkx", stderr)
