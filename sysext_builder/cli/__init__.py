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
