"""The command-line launchers, each runnable as `python launch/<name>.py` in a checkout or as the
installed `jaxinpaint-<name>` command (pyproject.toml's [project.scripts]) anywhere."""

import sys


def run(main, doc: str, *, config_flag: bool = False) -> None:
    """absl's `app.run(main)` for a launcher, as a script or as an installed command: `--help`
    shows `doc` (absl prints `__main__`'s docstring, which for a command is pip's wrapper's), and
    with `config_flag`, a `--config=configs/NAME.py` that is no file here is the installed one
    and a `--config.FIELD=VALUE` that cannot be applied is one line, not a traceback."""
    from absl import app

    sys.modules["__main__"].__doc__ = doc
    if not config_flag:
        app.run(main)
        return
    import configs

    sys.argv = configs.locate_in_argv(sys.argv)
    app.run(main, flags_parser=_parse_config_overrides)


def _parse_config_overrides(argv: list[str]) -> list[str]:
    from absl import app

    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # raised by ml_collections
        overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
        sys.exit(
            f"error: a --config override cannot be applied ({type(e).__name__}: {e}); expected "
            f"existing fields with values of their type, got {' '.join(overrides) or 'none'}"
        )
