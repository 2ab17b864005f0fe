"""The process runner: run/stream results, failure tails, status text, process groups."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import fixtures
import testtools

from sysext_builder import runner
from sysext_builder.errors import SysextBuilderError, ToolMissingError

PY = sys.executable


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_until(predicate: object, what: str, tries: int = 600) -> None:
    """Poll ``predicate`` (a bounded wait for a condition, not a timing check)."""
    assert callable(predicate)
    event = threading.Event()
    for _ in range(tries):
        if predicate():
            return
        event.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class RunnerTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.FakeLogger(level=10))

    def kill_at_end(self, pidfile: Path) -> None:
        def cleanup() -> None:
            if pidfile.exists():
                for word in pidfile.read_text().split():
                    try:
                        os.kill(int(word), 9)
                    except ProcessLookupError:
                        pass
        self.addCleanup(cleanup)


class TestDescribeStatus(testtools.TestCase):

    def test_exit_status_and_signals(self) -> None:
        self.assertEqual("failed with exit status 3", runner.describe_status(3))
        self.assertEqual("killed by SIGKILL", runner.describe_status(-9))
        self.assertEqual("killed by SIGTERM", runner.describe_status(-15))
        self.assertEqual("killed by signal 200", runner.describe_status(-200))


class TestRun(RunnerTestCase):

    def test_captures_stdout_stderr_and_uses_env_cwd_and_input(self) -> None:
        script = ("import os, sys; print(os.environ['SB_X'], os.getcwd()); "
                  "print('err', file=sys.stderr); print(sys.stdin.read().upper())")
        done = runner.run([PY, "-c", script], env={"SB_X": "hello"}, cwd=self.dir,
                          input="piped")
        self.assertEqual(0, done.returncode)
        self.assertEqual(f"hello {self.dir}\nPIPED\n", done.stdout)
        self.assertEqual("err\n", done.stderr)

    def test_stdin_is_empty_without_input(self) -> None:
        done = runner.run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"])
        self.assertEqual("''\n", done.stdout)

    def test_failure_keeps_the_last_lines_of_stderr(self) -> None:
        script = ("import sys\nfor i in range(30): print(f'line {i}', file=sys.stderr)\n"
                  "print('on stdout')\nsys.exit(3)")
        err = self.assertRaises(runner.CommandFailed, runner.run, [PY, "-c", script])
        self.assertIsInstance(err, SysextBuilderError)
        self.assertEqual(f"{Path(PY).name} failed with exit status 3", err.message)
        self.assertEqual(3, err.returncode)
        self.assertEqual([f"line {i}" for i in range(10, 30)], err.tail)
        self.assertEqual(runner.TAIL_LINES, len(err.tail))
        self.assertEqual([PY, "-c", script], err.argv)
        assert err.hint is not None
        self.assertTrue(err.hint.startswith("last output:\n  line 10\n  line 11\n"))
        self.assertTrue(err.hint.endswith("  line 29"))
        self.assertNotIn("on stdout", err.hint)

    def test_failure_falls_back_to_stdout_and_names_what(self) -> None:
        script = "print('only stdout'); raise SystemExit(1)"
        err = self.assertRaises(runner.CommandFailed, runner.run, [PY, "-c", script],
                                what="unpacking base.tar")
        self.assertEqual("unpacking base.tar failed with exit status 1", err.message)
        self.assertEqual(["only stdout"], err.tail)

    def test_silent_failure_has_no_hint(self) -> None:
        err = self.assertRaises(runner.CommandFailed, runner.run, ["false"])
        self.assertEqual("false failed with exit status 1", err.message)
        self.assertIsNone(err.hint)
        self.assertEqual([], err.tail)

    def test_no_check_returns_the_status(self) -> None:
        done = runner.run([PY, "-c", "raise SystemExit(4)"], check=False)
        self.assertEqual(4, done.returncode)

    def test_killed_command_is_described_by_signal(self) -> None:
        err = self.assertRaises(runner.CommandFailed, runner.run,
                                ["sh", "-c", "kill -KILL $$"])
        self.assertEqual(-9, err.returncode)
        self.assertEqual("sh killed by SIGKILL", err.message)

    def test_terminate_all_kills_the_whole_process_group(self) -> None:
        pidfile = self.dir / "pids"
        script = f"sleep 300 & echo $$ $! > {pidfile}.new; mv {pidfile}.new {pidfile}; wait"
        caught: list[BaseException] = []

        def target() -> None:
            try:
                runner.run(["sh", "-c", script])
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                caught.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        self.addCleanup(thread.join)
        self.kill_at_end(pidfile)  # runs before the join: a surviving child holds the pipes
        wait_until(pidfile.exists, "the command to start")
        shell, child = (int(w) for w in pidfile.read_text().split())
        runner.terminate_all()
        wait_until(lambda: not thread.is_alive(), "run() to return after terminate_all")
        self.assertEqual(1, len(caught))
        exc = caught[0]
        assert isinstance(exc, runner.CommandFailed)
        self.assertEqual("sh killed by SIGTERM", exc.message)
        self.assertTrue(gone(shell))
        wait_until(lambda: gone(child), f"the background child {child} to die")


class TestStream(RunnerTestCase):

    def test_merges_output_hands_every_line_over_and_keeps_the_tail(self) -> None:
        script = ("import sys\nfor i in range(6):\n"
                  "    print(f'out {i}', flush=True)\n"
                  "    print(f'err {i}', file=sys.stderr, flush=True)\nsys.exit(2)")
        lines: list[str] = []
        code, tail = runner.stream([PY, "-c", script], on_line=lines.append, tail_lines=3)
        self.assertEqual(2, code, "a failure is returned, not raised")
        self.assertEqual([x for i in range(6) for x in (f"out {i}", f"err {i}")], lines)
        self.assertEqual(["err 4", "out 5", "err 5"], tail)

    def test_env_cwd_and_undecodable_bytes(self) -> None:
        script = ("import os, sys; sys.stdout.buffer.write(b'bad \\xff\\n'); "
                  "print(os.environ['SB_Y'], os.getcwd())")
        code, tail = runner.stream([PY, "-c", script], env={"SB_Y": "why"}, cwd=self.dir)
        self.assertEqual(0, code)
        self.assertEqual(["bad \ufffd", f"why {self.dir}"], tail)

    def test_default_tail_length(self) -> None:
        code, tail = runner.stream([PY, "-c", "for i in range(50): print(i)"])
        self.assertEqual([str(i) for i in range(30, 50)], tail)

    def test_interrupt_in_the_reader_kills_the_process_group(self) -> None:
        pidfile = self.dir / "pids"
        self.kill_at_end(pidfile)
        script = f"sleep 300 & echo $$ $! > {pidfile}; echo started; wait"

        def on_line(line: str) -> None:
            raise KeyboardInterrupt

        self.assertRaises(KeyboardInterrupt, runner.stream, ["sh", "-c", script],
                          on_line=on_line)
        shell, child = (int(w) for w in pidfile.read_text().split())
        self.assertTrue(gone(shell), "the command itself was waited for")
        wait_until(lambda: gone(child), f"the background child {child} to die")


class TestRunBounded(RunnerTestCase):

    def test_finishes_in_time(self) -> None:
        self.assertEqual((3, ["hi"]), runner.run_bounded(["sh", "-c", "echo hi; exit 3"], 30))

    def test_deadline_kills_the_process_group(self) -> None:
        pidfile = self.dir / "pids"
        self.kill_at_end(pidfile)
        script = f"sleep 300 & echo $$ $! > {pidfile}; echo started; wait"
        code, tail = runner.run_bounded(["sh", "-c", script], 1.0)
        self.assertEqual((None, ["started"]), (code, tail))
        shell, child = (int(w) for w in pidfile.read_text().split())
        wait_until(lambda: gone(shell) and gone(child), "the shell and its child to die")


class TestSupervisor(RunnerTestCase):
    """Nothing a command starts outlives the builder, not even after SIGKILL."""

    def start_builder(self, command: str) -> tuple[subprocess.Popen[bytes], list[int]]:
        """A Python process streaming ``command`` (sh, which writes PIDs to a file and
    then execs a sleep)."""
        pidfile = self.dir / "pids"
        self.kill_at_end(pidfile)
        script = (f"from sysext_builder import runner\n"
                  f"runner.stream(['sh', '-c', {command!r} + ' > {pidfile}.new; "
                  f"mv {pidfile}.new {pidfile}; exec sleep 299'])\n")
        builder = subprocess.Popen([PY, "-c", script], cwd=Path(runner.__file__).parents[1])
        self.addCleanup(lambda: builder.poll() is None and builder.kill())
        wait_until(pidfile.exists, "the command to start")
        return builder, [int(w) for w in pidfile.read_text().split()]

    def test_sigkill_of_the_builder_kills_children_that_left_the_session(self) -> None:
        builder, pids = self.start_builder("sleep 300 & a=$!; setsid sleep 301 & "
                                           "echo $$ $a $!")
        self.assertEqual(3, len(pids))
        self.assertFalse(any(gone(pid) for pid in pids))
        builder.kill()
        builder.wait()
        wait_until(lambda: all(gone(pid) for pid in pids), f"{pids} to die", tries=200)

    def test_sigkill_of_the_builder_kills_double_forked_daemons(self) -> None:
        inner = self.dir / "inner"
        builder, pids = self.start_builder(
            f"(setsid sh -c 'sleep 302 & echo $! > {inner}' &); "
            f"until [ -s {inner} ]; do sleep 0.05; done; echo $(cat {inner}) $$")
        self.assertEqual(2, len(pids))
        builder.kill()
        builder.wait()
        wait_until(lambda: all(gone(pid) for pid in pids), f"{pids} to die", tries=200)

    def test_what_a_command_leaves_running_is_killed_and_said(self) -> None:
        pidfile = self.dir / "pids"
        self.kill_at_end(pidfile)
        done = runner.run(["sh", "-c", f"setsid sleep 300 > /dev/null & echo $! > {pidfile}"])
        self.assertEqual("sysext-builder: killed 1 process(es) sh left running\n", done.stderr)
        self.assertTrue(gone(int(pidfile.read_text())))

    def test_exec_errors_are_raised_as_popen_raises_them(self) -> None:
        self.assertRaises(FileNotFoundError, runner.run, [str(self.dir / "missing")])
        plain = self.dir / "plain"
        plain.write_text("not executable\n")
        self.assertRaises(PermissionError, runner.stream, [str(plain)])


class TestRequireTool(testtools.TestCase):

    def test_found_tool_returns_its_path(self) -> None:
        found = runner.require_tool("sh")
        self.assertTrue(os.access(found, os.X_OK))
        self.assertEqual("sh", Path(found).name)

    def test_missing_known_tool_names_the_debian_package(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.paths.which", lambda tool: None))
        err = self.assertRaises(ToolMissingError, runner.require_tool, "mksquashfs")
        self.assertEqual("required tool 'mksquashfs' not found on PATH", err.message)
        self.assertEqual("apt-get install squashfs-tools", err.hint)
        self.assertEqual(22, err.exit_code)

    def test_missing_unknown_tool_has_no_hint(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("PATH", "/nonexistent"))
        err = self.assertRaises(ToolMissingError, runner.require_tool, "sb-no-such-tool-xyz")
        self.assertIn("sb-no-such-tool-xyz", err.message)
        self.assertIsNone(err.hint)


class TestCommandLinesRedacted(testtools.TestCase):

    def test_debug_log_hides_url_secrets(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        runner.run(["true", "https://u:canary-pw@example.com/x?token=canary-tok&a=1"])
        self.assertIn("run: true https://u:***@example.com/x?token=***", logger.output)
        self.assertNotIn("canary", logger.output)
