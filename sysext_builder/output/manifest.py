"""``NAME.manifest.json``: what an image holds and how it was made.

Recorded: the elements (name, path, origin), the extension-release fields,
every file (path, type, mode, size, sha256 or link target), the output
formats with tool versions, artifacts, and the documented settings of the
build.  Never recorded: environment values (DIB leaks passwords that way).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sysext_builder.fileutil import sha256_file
from sysext_builder.model.element import Element

SCHEMA = 1
_HASH_THREADS = 4


def file_list(root: Path) -> list[dict[str, Any]]:
    """Every entry under ``root`` in sorted order (directories included).

    Files are hashed by a few threads (hashing releases the GIL): on a large
    tree this is the builder's biggest cost after packing (bench/README-build.rst).
    """
    entries: list[dict[str, Any]] = []
    to_hash: list[tuple[dict[str, Any], str]] = []
    top = os.fspath(root).rstrip("/") + "/"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            item: dict[str, Any] = {"path": full[len(top):],
                                    "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
            if stat.S_ISLNK(st.st_mode):
                item.update(type="symlink", target=os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                item["type"] = "directory"
            elif stat.S_ISREG(st.st_mode):
                item.update(type="file", size=st.st_size)
                to_hash.append((item, full))
            else:
                item["type"] = "other"
            entries.append(item)
    with ThreadPoolExecutor(max_workers=_HASH_THREADS) as pool:
        for (item, _), digest in zip(to_hash, pool.map(sha256_file, [f for _, f in to_hash]),
                                     strict=True):
            item["sha256"] = digest
    entries.sort(key=lambda e: e["path"])
    return entries


def render(*, name: str, elements: Sequence[Element], release: Mapping[str, str],
           files: Sequence[Mapping[str, Any]], images: Sequence[Mapping[str, Any]],
           settings: Mapping[str, Any], artifacts: Sequence[str] = (),
           extra: Mapping[str, Any] | None = None) -> str:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "elements": [{"name": e.name, "path": str(e.path), "origin": e.origin}
                     for e in elements],
        "extension_release": dict(release),
        "images": list(images),
        "artifacts": list(artifacts),
        "settings": dict(settings),
        "files": list(files),
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
