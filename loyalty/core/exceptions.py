class ApplicationError(Exception):
    """A business rule refused the request; `message` is shown to the user as is (already translated)."""

    def __init__(self, message: str, *, code: str = "invalid", extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
