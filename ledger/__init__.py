"""The ledger: jobs, their offsets and their replies in order, in SQLite or PostgreSQL.

Plain code: it knows nothing of the broker or of HTTP.
"""

from ledger.base import Ledger, StoreOutcome
from ledger.factory import open_ledger

__all__ = ["Ledger", "StoreOutcome", "open_ledger"]
