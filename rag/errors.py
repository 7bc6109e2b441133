"""The one exception type users see: its message is a single line that says what to do."""


class RagError(Exception):
    """A problem the user can fix; the CLI prints `error: <message>` and exits non-zero."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class GenerationGone(RagError):
    """The generation being read was replaced and removed by a full rebuild while a question
    was being answered; whoever holds the reader reopens the live generation and asks again."""
