"""The command-line launchers, each runnable as `python launch/<name>.py` in a checkout or as the
installed `jaxinpaint-<name>` command (pyproject.toml's [project.scripts]) anywhere."""

import os
import sys

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

    from launch import console

    _use_compile_cache()
    console.install()  # bars and log lines on lines of their own
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
