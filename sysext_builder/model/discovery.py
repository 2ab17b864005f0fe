"""Assemble the element search path from its four sources.

First hit wins, in this order: ``--element-path`` options, ``ELEMENTS_PATH``
(colon separated), directories registered by installed packages under the
``sysext_builder.elements`` entry point group, and the built-in elements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sysext_builder import paths, plugins
from sysext_builder.model.element import ElementIndex, SearchDir


def search_path(cli_dirs: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                entry_points: bool = True, builtin: bool = True) -> list[SearchDir]:
    env = environ if environ is not None else {}
    result = [SearchDir(Path(d).absolute(), "--element-path") for d in cli_dirs]
    for part in env.get("ELEMENTS_PATH", "").split(":"):
        if part:
            result.append(SearchDir(Path(part).absolute(), "ELEMENTS_PATH"))
    if entry_points:
        result += [SearchDir(path, origin) for origin, path in plugins.element_dirs()]
    if builtin:
        result.append(SearchDir(paths.builtin_elements_dir(), "built-in"))
    unique: list[SearchDir] = []
    seen: set[Path] = set()
    for sdir in result:
        if sdir.path not in seen:  # the same dir twice would "override" itself
            seen.add(sdir.path)
            unique.append(sdir)
    return unique


def index(cli_dirs: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> ElementIndex:
    return ElementIndex(search_path(cli_dirs, environ))
