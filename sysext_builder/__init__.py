"""sysext-builder: build systemd-sysext images from DIB-style elements.

The package is a library first: it never prints and never exits.  The
console scripts live in :mod:`sysext_builder.cli`.
"""

import logging
from importlib import metadata

from sysext_builder.errors import SysextBuilderError

__all__ = ["SysextBuilderError", "__version__", "package_version"]


def package_version() -> str:
    """The installed distribution's version (reads package metadata: ~30 ms)."""
    try:
        return metadata.version("sysext-builder")
    except metadata.PackageNotFoundError:  # pragma: no cover - source tree
        return "0+unknown"


def __getattr__(name: str) -> str:
    # PEP 562: importlib.metadata costs ~30 ms; only pay it when asked.
    if name == "__version__":
        return package_version()
    raise AttributeError(name)

logging.getLogger(__name__).addHandler(logging.NullHandler())
