"""Stage 6, hits -> figures: question sets, IR metrics, abstention calibration, `rag eval`.
Takes question sets (plain dicts) and a searcher; gives metrics, tables and a report folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.evaluation.beir import eval_beir
    from rag.evaluation.questions import load_questions, read_question_records
    from rag.evaluation.report import format_table, write_report
    from rag.evaluation.runner import EvalOptions, eval_jsonl, parse_modes

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "EvalOptions": "rag.evaluation.runner",
    "eval_beir": "rag.evaluation.beir",
    "eval_jsonl": "rag.evaluation.runner",
    "format_table": "rag.evaluation.report",
    "load_questions": "rag.evaluation.questions",
    "parse_modes": "rag.evaluation.runner",
    "read_question_records": "rag.evaluation.questions",
    "write_report": "rag.evaluation.report",
}
__all__ = [
    "EvalOptions", "eval_beir", "eval_jsonl", "format_table", "load_questions", "parse_modes",
    "read_question_records", "write_report",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
