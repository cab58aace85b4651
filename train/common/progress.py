"""A dependency-free progress bar with throughput and ETA, on stderr."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Prints ``label [####....] i/n  items/s  ETA  extra`` as work advances.

    On a terminal the line is redrawn at most every ``interval`` seconds; in a
    log (not a TTY) a line is printed every ``log_every`` fraction of the work,
    so CI logs stay short.

    Args:
      total: number of steps.
      label: prefix, e.g. ``"epoch 1/3"``.
      items_per_step: items (images) per step, for the throughput figure.
      start: steps already done (resumed runs); they do not count towards speed.
    """

    def __init__(self, total: int, label: str = "", items_per_step: int = 1, start: int = 0,
                 interval: float = 0.5, log_every: float = 0.25, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.items_per_step = items_per_step
        self.done = start
        self._start_done = start
        self._t0 = time.perf_counter()
        self._last_draw = 0.0
        self._interval = interval
        self._next_log = start / self.total + log_every
        self._log_every = log_every
        self._stream = stream or sys.stderr
        self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()

    def update(self, steps: int = 1, extra: str = "") -> None:
        self.done += steps
        now = time.perf_counter()
        finished = self.done >= self.total
        if self._tty:
            if finished or now - self._last_draw >= self._interval:
                self._last_draw = now
                self._stream.write("\r" + self.line(extra) + "\x1b[K")
                self._stream.flush()
        elif finished or self.done / self.total >= self._next_log:
            self._next_log += self._log_every
            self._stream.write(self.line(extra) + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def line(self, extra: str = "") -> str:
        elapsed = time.perf_counter() - self._t0
        new = self.done - self._start_done
        rate = new / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        eta_text = format_seconds(eta) if eta == eta else "--:--"
        return (f"{self.label} [{bar}] {self.done}/{self.total} "
                f"{rate * self.items_per_step:,.0f} img/s ETA {eta_text} {extra}").rstrip()
