"""One stderr for the launchers' progress bars and log lines, so that neither lands inside the
other: tqdm redraws a bar in place ("\\r" and no newline) and absl's lines were written straight
after it, on the bar's own line ("train:  3%|▍ | 45/1500 [00:09<04:50]I1207 10:00:00 ...").

`install()` puts a `BarsAndLines` in front of stderr for both: on a terminal a log line starts on a
line of its own (the bar's last state stays above it, and the bar redraws below); where stderr is
no terminal (a log file, `make demo > log`), each redraw is a whole line instead of a carriage
return (tqdm redraws at most every `mininterval`), and the blanking a bar does before
`tqdm.write` is dropped.
"""

from __future__ import annotations

import sys
from typing import TextIO


class BarsAndLines:
    """A text stream in front of `stream` that keeps bar redraws and whole lines apart."""

    def __init__(self, stream: TextIO, terminal: bool | None = None):
        self.stream = stream
        self.terminal = stream.isatty() if terminal is None else terminal
        self._bar_line = False  # terminal: the cursor is on a bar's line, after the bar
        self._after_bar = False  # file: the last line written was a bar's (ended by us)

    def write(self, text: str) -> int:
        if self.terminal:
            if self._bar_line and text and not text.startswith("\r"):
                self.stream.write("\n")  # a log line: under the bar's last state, not after it
            self.stream.write(text)
            last = text.rsplit("\n", 1)[-1]
            if "\r" in last:  # the bar, or a blanked line with the cursor at its start
                self._bar_line = bool(last.rsplit("\r", 1)[-1].strip())
            elif "\n" in text:
                self._bar_line = False
            return len(text)
        # A file: each redraw ("\r" and a bar) is a whole line, so that nothing written after it
        # (a log line, a message on stdout) can land on it; a blanked bar is dropped, and so is
        # the newline tqdm ends a bar with.
        head, *redraws = text.split("\r")
        if self._after_bar and head.startswith("\n"):
            head = head[1:]
        if head:
            self.stream.write(head)
            self._after_bar = False
        for bar in redraws:
            if bar.strip():
                self.stream.write(bar.rstrip("\n") + "\n")
                self._after_bar = True
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.terminal

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name):  # encoding, errors, buffer...: the stream's
        return getattr(self.stream, name)


def install() -> BarsAndLines:
    """Routes `sys.stderr` (tqdm's bars) and absl's log handler through one `BarsAndLines`."""
    from absl import logging

    console = sys.stderr if isinstance(sys.stderr, BarsAndLines) else BarsAndLines(sys.stderr)
    sys.stderr = console
    logging.get_absl_handler().python_handler.stream = console
    return console
