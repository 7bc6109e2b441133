"""A package's public names, imported from their modules on first use (PEP 562 `__getattr__`).

Each stage's `__init__.py` lists its surface this way, so that importing a package (or a module
inside it) never imports the rest of the stage: `rag ask` and `rag --help` stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exported_on_first_use(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """The `__getattr__` of `package`: each name in `exports` from the module it maps to."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
