"""fsync and fdatasync calls of some processes over a span, counted in the kernel by
`perf stat` on the syscall tracepoints (every thread of each process; nothing is slowed the way
strace's ptrace stops would slow it). Children started after the count began are not seen."""

import contextlib
import functools
import shutil
import signal
import subprocess
from pathlib import Path

EVENTS = ("syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync")


@functools.cache
def available() -> bool:
    """True if `perf` is installed and may read the syscall tracepoints here."""
    if shutil.which("perf") is None:
        return False
    done = subprocess.run(
        ["perf", "stat", "-x,", "-e", ",".join(EVENTS), "--", "true"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


class FsyncCounter:
    """`with FsyncCounter({"worker": [pid, ...]}, dir) as c: ...; c.counts["worker"]`."""

    def __init__(self, pids: dict[str, list[int]], run_dir: Path) -> None:
        self.pids = pids
        self.run_dir = run_dir
        self.counts: dict[str, int] = {}
        self._perfs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def __enter__(self) -> "FsyncCounter":
        for name, pids in self.pids.items():
            out = self.run_dir / f"perf-{len(self._perfs)}.csv"
            argv = ["perf", "stat", "-x,", "-o", str(out), "-e", ",".join(EVENTS)]
            argv += ["-p", ",".join(map(str, pids))]
            self._perfs[name] = (subprocess.Popen(argv, stderr=subprocess.DEVNULL), out)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, (perf, out) in self._perfs.items():
            with contextlib.suppress(ProcessLookupError):
                perf.send_signal(signal.SIGINT)
            perf.wait(10)
            self.counts[name] = _total(out)


def _total(csv: Path) -> int:
    total = 0
    for line in csv.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("syscalls:") and fields[0].isdigit():
            total += int(fields[0])
    return total
