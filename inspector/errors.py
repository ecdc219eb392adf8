"""What can go wrong with a request, in the station's own words.

The inspection service, the pipeline and the store raise these; the HTTP API turns
each kind into one status in one place (``inspector.api.problems``) and the bench
station shows the sentence to the operator. Every error carries a stable ``code``
a client can branch on; ``retry_after`` (seconds) says when trying again may work;
``details`` are extra facts worth showing (the view at fault, the fields that failed).
"""

from __future__ import annotations

from typing import Any, ClassVar


class InspectorError(Exception):
    """A request the station will not or cannot carry out, with a stable code."""

    default_code: ClassVar[str] = "error"

    def __init_subclass__(cls, code: str = "", **kwargs: Any) -> None:
        """``class NotFound(InspectorError, code="not_found")``: the code its errors carry unless told another."""
        super().__init_subclass__(**kwargs)
        cls.default_code = code or cls.default_code

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: int | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_after = retry_after
        self.details = details


class InvalidInput(InspectorError, ValueError, code="invalid_request"):
    """The request itself is wrong (a field, a cursor, the number of views); sending it again will not help."""


class Refused(InvalidInput, code="inspection_refused"):
    """The request is well formed but this item cannot be inspected as described."""


class TooLarge(InvalidInput, code="content_too_large"):
    """The request asks for more than the station takes (pixels, views)."""


class Unsupported(InvalidInput, code="unsupported_media_type"):
    """The request is in a form the station does not read (an image format, a body type)."""


class NotFound(InspectorError, LookupError, code="not_found"):
    """The thing asked for does not exist."""


class Gone(NotFound, code="gone"):
    """The thing asked for existed and was removed on purpose (a view pruned by the retention policy)."""


class Conflict(InspectorError, code="conflict"):
    """The request clashes with one already made (an idempotency key used twice, or still in use)."""


class Busy(InspectorError, code="busy"):
    """The station is too busy right now (a full queue, a locked database); retry after ``retry_after`` s."""


class StorageFull(InspectorError, code="storage_full"):
    """The disk of the images or of the database has no room left; retry once space is freed (507)."""


class Unavailable(InspectorError, code="unavailable"):
    """The station cannot do this yet (no model loaded); retry after ``retry_after`` s."""


class Broken(InspectorError, code="internal_error"):
    """Something the station stored is missing or damaged: not the caller's fault, and retrying will not help."""
