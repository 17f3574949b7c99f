"""`python -m jobcast` is the `jobcast` command."""

from jobcast.cli import main

main()
