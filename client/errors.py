"""The errors the client adds to contracts' hierarchy::

JobcastError
├── ScheduleRejectedError       the gateway refused the request (HTTP 409/422, AMQP rejection)
└── UnavailableError
    └── GatewayUnreachableError  nothing answers at the gateway URL
"""

from contracts import JobcastError, UnavailableError


class ScheduleRejectedError(JobcastError):
    """The request was refused: invalid, or an idempotency key reused for another request."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


class GatewayUnreachableError(UnavailableError):
    """The jobcast gateway does not answer at the configured URL."""
