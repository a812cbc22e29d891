"""The face mesh in Flax (jaxinpaint/models/face_mesh.py) against the TFLite model as
TensorFlow's interpreter runs it, on sample faces framed as data_pipeline.landmarks frames them
and on random input."""

import os
import warnings

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipeline import align, landmarks, sample_faces
from jaxinpaint.models import face_mesh

pytestmark = pytest.mark.usefixtures("fast_compile")

FACES = ("face000.jpg", "face040.jpg", "face090.jpg")
POINT_TOL = 1e-3  # pixels of the 192-px input
PRESENCE_TOL = 1e-4
LOGIT_TOL = 1e-3


def _windows() -> np.ndarray:
    """[4, 192, 192, 3] float32 in [0, 1]: three sample faces, each in the window `FaceMesh`
    cuts around BlazeFace's box, and one of uniform noise."""
    out = []
    for name in FACES:
        bgr = cv2.imread(os.path.join(sample_faces.SAMPLE_DIR, name))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = landmarks.BlazeFace()(rgb)
        assert found, name
        window, _ = landmarks.mesh_window(rgb, found[0].keypoints, found[0].box)
        out.append(window.astype(np.float32) / 255.0)
    out.append(np.random.default_rng(0).random((192, 192, 3), dtype=np.float32))
    return np.stack(out)


def _tflite(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points [B, 468, 3], face logit [B]) from TensorFlow's TFLite interpreter, one at a
    time."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's notice that LiteRT replaces it
        interpreter = tf.lite.Interpreter(model_path=face_mesh.MESH_PATH)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    outs = {o["name"]: o["index"] for o in interpreter.get_output_details()}
    points, logits = [], []
    for window in windows:
        interpreter.set_tensor(inp["index"], window[None])
        interpreter.invoke()
        points.append(interpreter.get_tensor(outs["conv2d_21"]).reshape(468, 3))
        logits.append(interpreter.get_tensor(outs["conv2d_31"]).reshape(()))
    return np.stack(points), np.array(logits, np.float64)


def _presence(logit) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logit, np.float64)))


@pytest.fixture(scope="module")
def mesh():
    params = jax.tree.map(jnp.asarray, face_mesh.load_face_mesh_params())
    apply = jax.jit(face_mesh.FaceMeshNet().apply)
    windows = _windows()
    return params, apply, windows, _tflite(windows)


def _errors(apply, params, windows, reference):
    """Per window: the largest point error (pixels), the presence's and the logit's error."""
    points, logit = apply(params, windows)
    want_points, want_logit = reference
    return (
        np.abs(np.asarray(points) - want_points).max(axis=(1, 2)),
        np.abs(_presence(logit) - _presence(want_logit)),
        np.abs(np.asarray(logit, np.float64) - want_logit),
    )


def test_flax_face_mesh_matches_tflite(mesh):
    params, apply, windows, reference = mesh
    point_err, presence_err, logit_err = _errors(apply, params, windows, reference)
    assert (point_err < POINT_TOL).all(), point_err
    assert (presence_err < PRESENCE_TOL).all(), presence_err
    # The presence saturates near 1 on a face: the logit shows the face head's error there.
    assert (logit_err < LOGIT_TOL).all(), logit_err
    # The sample windows hold faces and the noise does not, so the comparison covers both ends.
    presence = _presence(reference[1])
    assert (presence[:3] > 0.9).all() and presence[3] < 0.1, presence


def test_a_changed_layer_is_caught(mesh):
    """One PReLU turned into a ReLU (its slopes zeroed) moves the points far past the tolerance:
    the comparison above can fail."""
    params, apply, windows, reference = mesh
    changed = jax.tree.map(lambda x: x, params)
    changed["params"]["p_re_lu_9"]["alpha"] = jnp.zeros_like(params["params"]["p_re_lu_9"]["alpha"])
    point_err, _, _ = _errors(apply, changed, windows, reference)
    assert (point_err > 100 * POINT_TOL).all(), point_err


def test_a_file_of_another_network_is_refused():
    other = os.path.join(os.path.dirname(landmarks.MODEL_PATH), "face_detection_short_range.tflite")
    with pytest.raises(ValueError, match=r"face_detection_short_range\.tflite does not hold"):
        face_mesh.load_face_mesh_params(other)
    with pytest.raises(FileNotFoundError, match="missing"):
        face_mesh.load_face_mesh_params("/nonexistent/face_landmark.tflite")


def test_crop_to_window_is_cv2_warp_affine_of_the_template_framing():
    crop = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    want = cv2.warpAffine(
        crop[0], face_mesh.template_matrix(64), (192, 192), flags=cv2.INTER_LINEAR
    )
    got = np.asarray(face_mesh.crop_to_window(jnp.asarray(crop)))[0]
    # OpenCV rounds each axis' interpolation weights to 1/32 (up to 1/64 off each): the two
    # differ by up to 1/32 of the pixels' range, and on average by far less.
    assert np.abs(got - want).max() < 1 / 32
    assert np.abs(got - want).mean() < 1 / 200
    points = np.array([[[10.0, 20.0], [150.0, 99.0]]], np.float32)
    back = np.asarray(face_mesh.window_to_crop(jnp.asarray(points), 64))[0]
    np.testing.assert_allclose(
        cv2.transform(back[None], face_mesh.template_matrix(64))[0], points[0], atol=1e-3
    )


def test_the_template_framing_finds_the_mesh_found_through_blazeface(mesh):
    """On aligned crops the fixed window (no detector) gives the points `landmarks.FaceMesh`
    gives through BlazeFace's box, within 2 % of the crop's side; the parts lie where the
    template puts them."""
    params, apply, _, _ = mesh
    size = 128
    faces = sample_faces.load(size, align=True)[:4]
    crops = np.stack([f.image for f in faces])
    points, _ = apply(params, face_mesh.crop_to_window(jnp.asarray(crops / 255.0, jnp.float32)))
    points = np.asarray(face_mesh.window_to_crop(points[..., :2], size))
    opencv = landmarks.FaceMesh(passes=1)
    for crop, ours in zip(crops, points, strict=True):
        (found,) = landmarks.BlazeFace()(crop)[:1]
        _, theirs = opencv(crop, found.keypoints, found.box)
        assert np.linalg.norm(ours - theirs, axis=1).mean() < 0.02 * size
        right, left = (
            ours[list(idx)].mean(0) / size for idx in (face_mesh.RIGHT_EYE, face_mesh.LEFT_EYE)
        )
        lips = ours[list(face_mesh.LIPS)].mean(0) / size
        np.testing.assert_allclose([right, left], align.TEMPLATE[:2], atol=0.04)
        assert abs(lips[1] - align.TEMPLATE[3, 1]) < 0.05
