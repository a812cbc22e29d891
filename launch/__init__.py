"""The command-line launchers, each runnable as `python launch/<name>.py` in a checkout or as the
installed `jaxinpaint-<name>` command (pyproject.toml's [project.scripts]) anywhere."""

import os
import sys
from typing import TextIO

COMPILE_CACHE = "JAX_COMPILATION_CACHE_DIR"


class UserError(Exception):
    """A launcher's user-facing error: reported as one line, exit status 1."""


def default_compile_cache() -> str:
    """Where the launchers keep JAX's compiled programs between runs, unless the user sets
    JAX_COMPILATION_CACHE_DIR: $XDG_CACHE_HOME/jaxinpaint/jax (~/.cache/jaxinpaint/jax)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "jaxinpaint", "jax")


def _use_compile_cache() -> None:
    """Points JAX (read when it is imported) at `default_compile_cache`, unless the user chose a
    folder; JAX creates no parent folders, so they are made here (none if they cannot be)."""
    if COMPILE_CACHE in os.environ:
        return
    folder = default_compile_cache()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # a read-only home: compile every time, as without the cache
    os.environ[COMPILE_CACHE] = folder


def run(main, doc: str, *, config_flag: bool = False) -> None:
    """absl's `app.run(main)` for a launcher, as a script or as an installed command: `--help`
    shows `doc` (absl prints `__main__`'s docstring, which for a command is pip's wrapper's), and
    with `config_flag`, a `--config=configs/NAME.py` that is no file here is the installed one
    and a `--config.FIELD=VALUE` that cannot be applied is one line, not a traceback.

    JAX's persistent compilation cache is on (`default_compile_cache`): the second reconstruct,
    evaluation or resumed training of a model loads its compiled programs instead of compiling
    them again (the demo model's generator: 20 s of a 43 s reconstruct on 2 busy cores)."""
    from absl import app

    _use_compile_cache()
    install_console()  # bars and log lines on lines of their own
    sys.modules["__main__"].__doc__ = doc
    if not config_flag:
        app.run(main)
        return
    import configs

    sys.argv = configs.locate_in_argv(sys.argv)
    app.run(main, flags_parser=_parse_config_overrides)


def _parse_config_overrides(argv: list[str]) -> list[str]:
    from absl import app, flags

    try:
        parsed = app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # raised by ml_collections
        overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
        if not overrides:  # then the file itself: no get_config, or not a ConfigDict
            sys.exit(
                f"error: the --config file cannot be used ({type(e).__name__}: {e}); expected a "
                "Python file whose get_config() returns an ml_collections.ConfigDict"
            )
        sys.exit(
            f"error: a --config override cannot be applied ({type(e).__name__}: {e}); expected "
            f"existing fields with values of their type, got {' '.join(overrides)}"
        )
    except SyntaxError as e:  # in the config file itself
        sys.exit(
            f"error: the --config file {e.filename} cannot be loaded: line {e.lineno}: {e.msg}"
        )
    try:  # a config file that failed to load (missing, a syntax error) raises only when used
        flags.FLAGS.config.keys()
    except (OSError, SyntaxError) as e:
        while e.__cause__ is not None:  # the loader's own error, not ml_collections' wrapper
            e = e.__cause__
        sys.exit(f"error: the --config file cannot be loaded: {' '.join(str(e).split())}")
    return parsed


class BarsAndLines:
    """A text stream in front of `stream` that keeps bar redraws and whole lines apart: one
    stderr for the launchers' progress bars and log lines, so that neither lands inside the
    other. tqdm redraws a bar in place ("\\r" and no newline) and absl's lines were written
    straight after it, on the bar's own line ("train:  3%|▍ | 45/1500 [00:09<04:50]I1207 ...").
    On a terminal a log line now starts on a line of its own (the bar's last state stays above
    it, and the bar redraws below); where stderr is no terminal (a log file, `make demo > log`),
    each redraw is a whole line instead of a carriage return (tqdm redraws at most every
    `mininterval`), and the blanking a bar does before `tqdm.write` is dropped."""

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


def install_console() -> BarsAndLines:
    """Routes `sys.stderr` (tqdm's bars) and absl's log handler through one `BarsAndLines`."""
    from absl import logging

    console = sys.stderr if isinstance(sys.stderr, BarsAndLines) else BarsAndLines(sys.stderr)
    sys.stderr = console
    logging.get_absl_handler().python_handler.stream = console
    return console
