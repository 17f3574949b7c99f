"""Debian's chromium, which the browser tests drive, installed when it is missing.

`python3 -m harness.browser`: nothing to do where /usr/bin/chromium exists; as root with
apt-get, `apt-get update` then `apt-get install -y chromium`; otherwise one line says how,
and the exit code is 1 (in CI a missing browser is a failure, never a skip). The tests never
download a browser: Playwright is launched with this executable.

Standard library only: it runs with the system python3, before the venv exists.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium package installs it here; tests/e2e/browser.py launches it."""
INSTALL = (("apt-get", "update", "-q"), ("apt-get", "install", "-y", "-q", "chromium"))
INSTALL_SECONDS = 900


def plan(present: bool, root: bool, apt: bool) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """What to say and which commands to run (none: nothing to do, or no way to)."""
    if present:
        return "", ()
    if root and apt:
        return "chromium is missing (the browser tests drive it): apt-get install chromium", INSTALL
    return (
        f"the browser tests need Debian's chromium at {CHROMIUM}: run as root "
        "`apt-get install chromium` (or `python3 -m harness.browser` as root)",
        (),
    )


def ensure(
    say: Callable[[str], None],
    run: Callable[[Sequence[str]], int],
    present: Callable[[], bool] = lambda: os.path.exists(CHROMIUM),
    root: bool | None = None,
    apt: bool | None = None,
) -> bool:
    """Install chromium if it is missing and can be; True if it is there afterwards."""
    root = os.geteuid() == 0 if root is None else root
    apt = shutil.which("apt-get") is not None if apt is None else apt
    words, commands = plan(present(), root, apt)
    if words:
        say(words)
    for command in commands:
        if run(command) != 0:
            break
    return present()


def _run(command: Sequence[str]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(list(command), env=env, check=False, timeout=INSTALL_SECONDS)
    return done.returncode


def main() -> int:
    if ensure(lambda line: print(line, file=sys.stderr), _run):
        return 0
    print(f"FATAL: no chromium at {CHROMIUM}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
