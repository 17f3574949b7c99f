"""The query side: follows the reply topic into the ledger and serves results."""
