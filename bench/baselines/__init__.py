"""The two baselines jobcast is measured against, run back to back with it."""
