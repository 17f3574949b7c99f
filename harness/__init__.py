"""What the tests and the bench share to run jobcast for real: its processes, free ports,
throwaway vhosts on the broker, rabbitmqctl, and the services the two commands need.

Development only: not part of the installed jobcast. `broker` and `services` use the standard
library alone, so `python3 -m harness.services` works before the venv exists.
"""
