"""``python -m sysext_builder COMMAND [ARGS...]`` runs a console script by name.

Handy where the scripts are not on PATH (tests, a source tree)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from importlib import import_module

    commands = {
        "sysext-element-info": "element_info",
        "sysext-check": "check",
        "sysext-create": "create",
        "sysext-element-lint": "lint",
        "sysext-element-new": "element_new",
        "sysext-test-elements": "test_elements",
    }
    if not argv or argv[0] not in commands:
        print("usage: python -m sysext_builder {" + ",".join(sorted(commands)) + "} [ARGS...]",
              file=sys.stderr)
        return 2
    module = import_module(f"sysext_builder.cli.{commands[argv[0]]}")
    result: int = module.main(argv[1:])
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
