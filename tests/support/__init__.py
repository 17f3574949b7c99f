"""Test-only helpers: databases per test and waiting with deadlines (processes, ports, vhosts
and rabbitmqctl are in `harness/`, shared with the bench)."""
