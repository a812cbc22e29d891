"""jaxinpaint: remove what covers a face and reconstruct the face underneath (JAX/Flax).

`Inpainter` (a trained generator, from a training workdir) and `Reconstructor` (photo -> faces ->
mask -> inpainting -> photo) are the entry points for using a model; they load lazily, so that
importing a submodule does not import the whole stack.
"""

__all__ = ["Inpainter", "Reconstructor"]


def __getattr__(name):
    if name == "Inpainter":
        from jaxinpaint.inference import Inpainter

        return Inpainter
    if name == "Reconstructor":
        from jaxinpaint.reconstruct import Reconstructor

        return Reconstructor
    raise AttributeError(f"module 'jaxinpaint' has no attribute {name!r}")
