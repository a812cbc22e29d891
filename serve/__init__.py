"""Reconstruction from exported models, with onnxruntime, OpenCV and NumPy only.

`launch/export.py` writes a folder of files that need neither JAX nor PyTorch:

    exported/manifest.json       what the files are, their sizes and thresholds, their sources
    exported/generator.onnx      the inpainter's generator (jaxinpaint/export.py)
    exported/generator.stablehlo the same as serialized StableHLO, for JAX users
    exported/detector.onnx       the occluder detector (detector/export.py), when one was given

`serve.load("exported")` reads it into the two callables `jaxinpaint.reconstruct.Reconstructor`
takes, so `python launch/reconstruct.py --exported=exported ...` (or the `[serve]` install,
README) reconstructs photos exactly as with the training workdir and the detector checkpoint.
"""

from serve.runtime import Exported, ExportedDetector, ExportedInpainter, load

__all__ = ["Exported", "ExportedDetector", "ExportedInpainter", "load"]
