"""Element names the builder implements itself, and the name ``--base`` supplies.

diskimage-builder's own elements pull in its plumbing elements through
``element-deps``; here their work is part of the builder, so resolution
(:func:`.graph.resolve`) never selects them and logs why.  DIB's operating
system elements provide ``operating-system``; with ``--base`` the base is the
operating system, so they are left out too.
"""

from __future__ import annotations

from collections.abc import Mapping

#: diskimage-builder's plumbing elements whose work the builder does itself
BUILT_IN: Mapping[str, str] = {
    "package-installs": "package-installs files are installed by the builder itself",
    "pkg-map": "pkg-map files are read by the builder itself",
    "install-static": "static/ is copied by the builder itself",
    "install-types": "install types are selected by the builder itself",
    "source-repositories": "source-repository-* files are fetched by the builder itself",
    "manifests": "the manifest lies beside the image (NAME.manifest.json), never inside",
}
#: what DIB's operating-system elements provide: with --base, the base is the OS
OPERATING_SYSTEM = "operating-system"
