"""The launchers' stderr (launch.BarsAndLines): tqdm bars and absl log lines never share a line."""

import io
import logging as std_logging
import sys

from tqdm import tqdm

from launch import BarsAndLines, install_console

LINE = "I1207 10:00:00.000000 1 train.py:1] step 50\n"


def test_a_log_line_never_lands_on_a_bars_line():
    for terminal in (True, False):
        out = io.StringIO()
        console = BarsAndLines(out, terminal=terminal)
        console.write("\rtrain:   3%|▍         | 45/1500")  # a bar, as tqdm draws it
        console.write(LINE)
        console.write("\rtrain:   6%|▋         | 90/1500")
        console.write("\r                              \r")  # cleared for tqdm.write
        console.write(LINE)
        lines = out.getvalue().replace("\r", "\n").split("\n")
        assert LINE.strip() in lines, (terminal, out.getvalue())  # whole, on its own line
        assert all(not (line.startswith("train") and "I1207" in line) for line in lines)
    # In a file, each redraw is a line: no carriage returns, no blanked bars.
    assert "\r" not in out.getvalue()
    assert out.getvalue().split("\n")[:4] == [
        "train:   3%|▍         | 45/1500",
        LINE.strip(),
        "train:   6%|▋         | 90/1500",
        LINE.strip(),
    ]


def test_tqdm_and_absl_through_the_installed_console(monkeypatch):
    from absl import logging

    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", BarsAndLines(out, terminal=False))
    handler = logging.get_absl_handler().python_handler
    monkeypatch.setattr(handler, "stream", handler.stream)  # restored after the test
    console = install_console()
    assert sys.stderr is console and handler.stream is console
    record = std_logging.LogRecord("x", std_logging.INFO, __file__, 1, "step %d", (50,), None)
    with tqdm(total=4, desc="work", mininterval=0) as bar:
        bar.update(2)
        handler.emit(record)
        bar.update(2)
    lines = out.getvalue().split("\n")
    assert any(line.startswith("work:  50%") for line in lines)
    assert any(line.endswith("step 50") and "work" not in line for line in lines), lines
    assert any(line.startswith("work: 100%") for line in lines)
