"""Grounded question answering: ranked passages cited to exact spans of their sources.

`rag.open(...)` and `rag.build(...)` are the Python API (rag.api), imported on first use so
that `import rag` stays light for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rag.api import OpenIndex, build, open  # noqa: A004

__all__ = ["OpenIndex", "build", "open", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("open", "build", "OpenIndex"):
        import rag.api as api

        return getattr(api, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
