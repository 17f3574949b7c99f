"""The message headers jobcast writes or reads, named once.

Every `x-jobcast-*` header is jobcast's own; DELIVERY_COUNT is RabbitMQ's. All of them come
from the wire when a message is read: anyone who may publish may set them, so readers check
their type (messaging/connection.py, `header_count`).
"""

HEADER_SIGNATURE = "x-jobcast-signature"
"""On jobs and replies: the HMAC-SHA256 of the body, in hex (contracts/signing.py)."""

HEADER_CRASHES = "x-jobcast-crashes"
"""On a job jobcast handed back: its crashes so far. Present: ask where the job resumes."""

DELIVERY_COUNT = "x-delivery-count"
"""RabbitMQ's (quorum queues): failed deliveries of this message, 0 or absent on the first."""

BROKER_HISTORY = frozenset(
    {
        DELIVERY_COUNT,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
"""What RabbitMQ writes about one message's own history; a new copy of it starts without."""

HEADER_REASON = "x-jobcast-reason"
"""Set by jobcast on every message it dead-letters itself: why, in words (the detail)."""
HEADER_REASON_CODE = "x-jobcast-reason-code"
"""Set by jobcast on every message it dead-letters itself: why, as a DeadLetterReason value
(contracts/errors.py), for metrics and scripts to match on."""
HEADER_SOURCE = "x-jobcast-source-queue"
"""Set by jobcast on every message it dead-letters itself: where it came from."""
HEADER_EXCHANGE = "x-jobcast-exchange"
"""On a dead-letter copy: the exchange the original was published to ("" is the default)."""
HEADER_ROUTING_KEY = "x-jobcast-routing-key"
"""On a dead-letter copy: the original's routing key."""
HEADER_DELIVERY_COUNT = "x-jobcast-delivery-count"
"""On a dead-letter copy: the original's x-delivery-count (0: it failed on its first delivery)."""
HEADER_USER_ID = "x-jobcast-user-id"
"""On a dead-letter copy: the original's validated user_id, if it had one."""
HEADER_TRUNCATED = "x-jobcast-truncated"
"""On a dead-letter copy: true if its body is only the first DEAD_LETTER_BODY_LIMIT bytes."""
HEADER_ORIGINAL_SIZE = "x-jobcast-original-size"
"""On a truncated dead-letter copy: the original body's size in bytes."""
HEADER_KEY = "x-jobcast-key"
"""On a submission (jobcast.schedule, jobcast.schedule.batch, jobcast.cancel) with
JOBCAST_AUTH=on: the sender's API key, in clear. Never logged, and never copied to jobcast.dead."""
