"""Shared test helpers: the real broker, throwaway vhosts and databases, jobcast processes."""
