"""The terminal status line."""

from __future__ import annotations

import io
import logging

import testtools

from sysext_builder.cli.progress import ProgressHandler


class TestProgress(testtools.TestCase):

    def test_lines_scroll_and_status_names_step_and_hook(self) -> None:
        stream = io.StringIO()
        handler = ProgressHandler(stream)
        self.addCleanup(handler.close)
        logger = logging.getLogger("test.progress")
        logger.propagate = False
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        self.addCleanup(logger.removeHandler, handler)
        logger.info("==> phase install.d", extra={"progress_step": "phase install.d"})
        logger.info("[hello/10-x] running", extra={"progress_hook": "hello/install.d/10-x"})
        logger.info("[hello/10-x] some output")
        text = stream.getvalue()
        self.assertIn("==> phase install.d\n", text)
        self.assertIn("[hello/10-x] some output\n", text)
        last = text.rsplit("\n", 1)[-1]
        self.assertIn("phase install.d · hello/install.d/10-x", last)
        self.assertRegex(last, r"^\[\s*\d+\.\ds\]")
        logger.info("==> assemble", extra={"progress_step": "assemble"})
        last = stream.getvalue().rsplit("\n", 1)[-1]
        self.assertIn("assemble", last)
        self.assertNotIn("10-x", last, "a new step clears the hook")

    def test_close_clears_the_status_line(self) -> None:
        stream = io.StringIO()
        handler = ProgressHandler(stream)
        handler.close()
        self.assertTrue(stream.getvalue().endswith("\r\033[K"))
