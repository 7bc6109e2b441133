"""The one exception type users see: its message is a single line that says what to do."""


class RagError(Exception):
    """A problem the user can fix; the CLI prints `error: <message>` and exits non-zero."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
