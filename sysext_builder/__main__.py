"""``python -m sysext_builder COMMAND [ARGS...]`` runs a console script by name.

Handy where the scripts are not on PATH (tests, a source tree); the dispatch
table lives in :mod:`sysext_builder.cli`."""

from __future__ import annotations

import sys

from sysext_builder.cli import dispatch

if __name__ == "__main__":
    raise SystemExit(dispatch(sys.argv[1:]))
