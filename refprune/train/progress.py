"""Progress within an epoch: step, steps per second, ETA of the epoch and of the run.

On a terminal one line rewrites itself (carriage return); otherwise (a log
file, a pipe) a plain line is printed every :data:`PLAIN_EVERY` seconds.
Nothing is shown during the first :data:`QUIET_START` seconds, so short runs
print only their epoch lines.
"""

from __future__ import annotations

import sys
import time

QUIET_START = 3.0   # seconds before the first progress line (short runs stay quiet)
TTY_EVERY = 0.5     # seconds between rewrites of the terminal line
PLAIN_EVERY = 30.0  # seconds between plain lines when not on a terminal


def format_seconds(s: float) -> str:
    """``75`` → ``"1m15s"``; ``3725`` → ``"1h02m"``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class Progress:
    """Reports steps of a run of ``epochs`` epochs of ``steps_per_epoch`` steps each.

    Parameters
    ----------
    epochs, steps_per_epoch : int
    stream : file, optional
        Where to write (default sys.stderr).
    tty : bool, optional
        Rewrite one line (default: whether ``stream`` is a terminal).
    clock : callable
        Seconds (default time.perf_counter; tests pass a fake clock).
    """

    def __init__(self, epochs: int, steps_per_epoch: int, stream=None, tty=None, clock=time.perf_counter):
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.clock = clock
        self.start = clock()
        self.last = self.start
        self.done = 0          # steps since this object started (a resumed run counts from there)
        self.shown = False

    def step(self, epoch: int, k: int) -> None:
        """Step ``k`` (1-based) of epoch ``epoch`` is finished."""
        self.done += 1
        now = self.clock()
        if now - self.start < QUIET_START or now - self.last < (TTY_EVERY if self.tty else PLAIN_EVERY):
            return
        self.last = now
        rate = self.done / (now - self.start)
        left_epoch = self.steps_per_epoch - k
        left_run = left_epoch + (self.epochs - epoch) * self.steps_per_epoch
        line = (f"epoch {epoch}/{self.epochs}  step {k}/{self.steps_per_epoch}  {rate:.1f} steps/s  "
                f"epoch ETA {format_seconds(left_epoch / rate)}  run ETA {format_seconds(left_run / rate)}")
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
            self.shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Remove the terminal line (before an epoch line is printed)."""
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
