"""Memory of the bench's processes: their resident set size, sampled while a workload runs."""

import contextlib
import threading

import psutil

from harness.processes import Process


class RssSampler:
    """Samples the RSS of some processes every `every` seconds in a thread."""

    def __init__(self, processes: dict[str, Process], every: float = 0.25) -> None:
        self._processes = {name: psutil.Process(p.pid) for name, p in processes.items()}
        self._every = every
        self.samples: dict[str, list[int]] = {name: [] for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def _sample(self) -> None:
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                self.samples[name].append(int(process.memory_info().rss))

    def peak(self, name: str) -> int:
        return max(self.samples[name])

    def growth(self, name: str) -> int:
        """Peak RSS in the last quarter of the run minus the peak in its first quarter."""
        series = self.samples[name]
        quarter = max(1, len(series) // 4)
        return max(series[-quarter:]) - max(series[:quarter])
