"""Stage 7, the browser: the Gradio page, its HTTP edge and the app's start-up.
Takes an index location; gives a served page that asks the live index and shows sources in context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.web.server import build_app, serve
    from rag.web.startup import current_name, ensure_at, ensure_index, open_backend, open_backend_at
    from rag.web.state import AppState
    from rag.web.ui import build_ui, import_in_background

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "AppState": "rag.web.state",
    "build_app": "rag.web.server",
    "build_ui": "rag.web.ui",
    "current_name": "rag.web.startup",
    "ensure_at": "rag.web.startup",
    "ensure_index": "rag.web.startup",
    "import_in_background": "rag.web.ui",
    "open_backend": "rag.web.startup",
    "open_backend_at": "rag.web.startup",
    "serve": "rag.web.server",
}
__all__ = [
    "AppState", "build_app", "build_ui", "current_name", "ensure_at", "ensure_index",
    "import_in_background", "open_backend", "open_backend_at", "serve",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
