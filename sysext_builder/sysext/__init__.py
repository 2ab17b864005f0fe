"""Turning a staging tree into a valid systemd system extension.

Pure checks and rewrites: extension-release rendering and the compatibility
algorithm (:mod:`.release`, :mod:`.compat`), tree rules and ``/etc``/``/var``
lowering (:mod:`.tree`), unit enabling (:mod:`.units`); the real merge test
lives in :mod:`.verify`.
"""
