"""`rag bench`: speed and memory, each figure beside its floor, side by side in one run.
Takes corpora and sizes; gives printed figures and JSON (synthetic indexes built by the real code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.bench.run import format_report, run_bench

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "format_report": "rag.bench.run",
    "run_bench": "rag.bench.run",
}
__all__ = [
    "format_report", "run_bench",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
