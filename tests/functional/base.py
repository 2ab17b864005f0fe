"""Shared helpers for functional tests: running the real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.base import PIP_ISOLATION, require

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BUILD_ELEMENTS = FIXTURES / "elements" / "build"


def command(name: str, *args: str) -> list[str]:
    """argv running one of our console scripts with this interpreter."""
    return [sys.executable, "-m", "sysext_builder", name, *args]


def run(name: str, *args: str, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("ELEMENTS_PATH", None)
    full_env.update(PIP_ISOLATION)  # builds that pip-install ignore the host's pip.conf
    full_env.update(env or {})
    return subprocess.run(command(name, *args), capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


def run_tool(*argv: str) -> None:
    """Run a system tool for a test's set-up (``tar``, ``mount``); raise if it fails."""
    subprocess.run(argv, check=True, capture_output=True)


def require_root(what: str) -> None:
    """Skip (fail when $SYSEXT_TESTS_REQUIRE lists root) unless running as root."""
    require("root", os.geteuid() == 0,
            f"{what} needs root (CI runs the functional tests as root)")


def require_tool(tool: str, package: str) -> None:
    """Skip (fail when $SYSEXT_TESTS_REQUIRE lists tools) unless ``tool`` is on PATH."""
    require("tools", have_tool(tool), f"{tool} not installed (apt-get install {package})")


def have_tool(tool: str) -> bool:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(tool, path=path) is not None
