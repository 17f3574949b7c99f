"""The ledger: jobs, their offsets and their replies in order, in SQLite or PostgreSQL.

Plain code: it knows nothing of the broker or of HTTP.
"""

from ledger.factory import open_ledger
from ledger.protocol import Ledger
from ledger.rules import StoreOutcome

__all__ = ["Ledger", "StoreOutcome", "open_ledger"]
