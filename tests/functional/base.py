"""Shared helpers for functional tests: running the real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

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
    full_env.update(env or {})
    return subprocess.run(command(name, *args), capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise unittest.SkipTest(f"{what} needs root (CI runs the functional tests as root)")


def require_tool(tool: str, package: str) -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    if shutil.which(tool, path=path) is None:
        raise unittest.SkipTest(f"{tool} not installed (apt-get install {package})")


def have_tool(tool: str) -> bool:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(tool, path=path) is not None
