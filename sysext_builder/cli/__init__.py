"""Console entry points.  Each ``*_main`` imports its command module lazily so
``--help`` and ``--version`` stay cheap (no networkx, no stevedore)."""

from __future__ import annotations

from collections.abc import Sequence


def element_info_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import element_info

    return element_info.main(argv)


def create_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import create

    return create.main(argv)


def check_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import check

    return check.main(argv)


def element_lint_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import lint

    return lint.main(argv)


def element_new_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import element_new

    return element_new.main(argv)


def test_elements_main(argv: Sequence[str] | None = None) -> int:
    from sysext_builder.cli import test_elements

    return test_elements.main(argv)


#: console script -> module in this package (``python -m sysext_builder NAME``)
COMMANDS = {
    "sysext-element-info": "element_info",
    "sysext-check": "check",
    "sysext-create": "create",
    "sysext-element-lint": "lint",
    "sysext-element-new": "element_new",
    "sysext-test-elements": "test_elements",
}


def dispatch(argv: Sequence[str]) -> int:
    """Run the console script named by ``argv[0]`` with the rest of ``argv``."""
    import sys
    from importlib import import_module

    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m sysext_builder {" + ",".join(sorted(COMMANDS)) + "} [ARGS...]",
              file=sys.stderr)
        return 2
    module = import_module(f"sysext_builder.cli.{COMMANDS[argv[0]]}")
    result: int = module.main(list(argv[1:]))
    return result
