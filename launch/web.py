r"""The web page: upload a photo, see what was found, edit the mask, compare, download.

    python launch/web.py --exported=runs/demo/exported [--port=8000] [--host=127.0.0.1]
    jaxinpaint-web --exported=runs/demo/exported           # the same, installed (`.[serve]`)

then open http://127.0.0.1:8000/ (the API: /docs, /openapi.json; docs/web.md). Runs the models of
a folder written by launch/export.py with onnxruntime (no JAX, no PyTorch), on this machine only
unless --host says otherwise: the server has no accounts, so bind it to a public address only
behind something that has.

Exit status: 1 for a bad export folder or flag, without a traceback.
"""

import sys

from absl import flags

import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("exported", None, "A folder written by launch/export.py.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
flags.DEFINE_integer("port", 8000, "Port to listen on.", lower_bound=0, upper_bound=65535)
flags.DEFINE_integer(
    "max_mb", 32, "Largest request (photo and mask together) in MiB; larger get 413.", lower_bound=1
)
flags.DEFINE_integer(
    "max_megapixels", 25, "Largest photo in megapixels; larger get 413.", lower_bound=1
)
flags.DEFINE_integer(
    "jobs",
    None,
    "Photos in the models at once (default: the CPU count); others wait.",
    lower_bound=1,
)
flags.mark_flags_as_required(["exported"])


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 1
    import uvicorn

    from serve.web import create_app

    try:
        app = create_app(
            FLAGS.exported,
            max_bytes=FLAGS.max_mb * 2**20,
            max_pixels=FLAGS.max_megapixels * 1_000_000,
            max_jobs=FLAGS.jobs,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: --exported {FLAGS.exported}: {e}", file=sys.stderr)
        return 1
    print(f"jaxinpaint: open http://{FLAGS.host}:{FLAGS.port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=FLAGS.host, port=FLAGS.port, log_level="warning")
    return 0


def cli():
    """The `jaxinpaint-web` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
