"""Face keypoints (BlazeFace through OpenCV) and template alignment (data_pipeline/align.py)."""

import importlib
import pathlib

import cv2
import numpy as np
import pytest
from skimage import data

from data_pipeline import align, faces, landmarks, sample_faces

# The astronaut's eyes and mouth, read off the photo by hand at 8x zoom (photo pixels): the
# pupils' centres, and the lips' midline halfway between the mouth's corners.
ASTRONAUT = {"right_eye": (204, 101), "left_eye": (247, 104), "mouth": (223, 146)}


def _near(point, expected, tol):
    return float(np.hypot(*(np.asarray(point) - expected))) < tol


@pytest.fixture
def face_bench(monkeypatch):
    """bench/face_alignment.py, imported as a module."""
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    return importlib.import_module("face_alignment")


@pytest.mark.parametrize("detector", [landmarks.BlazeFace, landmarks.YuNet])
def test_each_detector_finds_the_astronaut_with_her_keypoints(detector):
    (found,) = detector()(data.astronaut())
    assert found.score > 0.8
    kps = dict(zip(landmarks.KEYPOINTS, found.keypoints, strict=True))
    for name, expected in ASTRONAUT.items():
        assert _near(kps[name], expected, 5), (name, kps[name])
    x, y, w, h = found.box
    assert x < 204 and x + w > 248 and y < 101 and y + h > 146


def test_the_face_mesh_puts_the_astronauts_keypoints_within_two_pixels():
    photo = data.astronaut()
    (found,) = landmarks.BlazeFace()(photo)
    refined = landmarks.FaceMesh().refine(photo, found)
    kps = dict(zip(landmarks.KEYPOINTS, refined, strict=True))
    for name, expected in ASTRONAUT.items():
        assert _near(kps[name], expected, 2), (name, kps[name])
    np.testing.assert_array_equal(refined[4:], found.keypoints[4:])  # the ears stay BlazeFace's


class _Blind:
    """A BlazeFace that sees nothing: what find_faces keeps then is YuNet's and Haar's."""

    iou = 0.3

    def raw(self, rgb, min_score=None):
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0)


def test_find_faces_keeps_a_face_only_yunet_sees_with_refined_keypoints(monkeypatch):
    monkeypatch.setattr(faces, "_blazeface", _Blind)
    (found,) = faces.find_faces(data.astronaut())
    kps = dict(zip(landmarks.KEYPOINTS, found.keypoints, strict=True))
    for name, expected in ASTRONAUT.items():
        assert _near(kps[name], expected, 2), (name, kps[name])  # the face mesh's, as BlazeFace's
    haar_only = faces.find_faces(data.astronaut(), yunet=False)
    assert haar_only and all(f.keypoints is None for f in haar_only)


def _bench_canvas(bench, index: int, category: str | None, angle: float):
    """One of bench/face_alignment.py's canvases: sample face `index` behind its `category`
    occluder (None: the clean control) turned by `angle`; and where its eyes are."""
    from data_pipeline import occluders

    face = sample_faces.load(size=bench.FACE_SIZE, align=False)[index]
    image = face.image
    if category is not None:
        image = bench.occlude(face, index, category, occluders.OccluderLibrary.load())["occluded"]
    canvas, offset = bench.embed(image)
    turn = bench.rotation(angle)
    photo = cv2.warpAffine(canvas, turn, canvas.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    eyes = bench.rotate_points(turn, faces.detect_keypoints(face.image).keypoints[:2] + offset)
    return photo, eyes


def _boxed(found, eyes) -> bool:
    """Whether one of the faces' boxes holds the eyes' midpoint (the bench's "found")."""
    x, y = eyes.mean(0)
    return any(bx <= x <= bx + w and by <= y <= by + h for bx, by, w, h in (f.box for f in found))


def test_yunet_finds_a_face_behind_a_glove_that_blazeface_misses(face_bench):
    """A dim sample face behind a glove, turned by 20°."""
    photo, eyes = _bench_canvas(face_bench, 113, "glove", 20.0)
    assert faces.find_faces(photo, yunet=False) == []
    (found,) = faces.find_faces(photo)
    assert np.abs(found.keypoints[:2] - eyes).max() < 10  # px; the eyes are 70 px apart


def test_yunet_sees_more_at_the_side_it_was_trained_at_and_in_the_mirror(face_bench):
    """Two 320 px canvases whose faces BlazeFace misses. Goggles over face 57's brow: YuNet
    finds it with the canvas scaled to 640, not at 320. A glove over face 25's cheek: found in
    the mirror view only."""
    photo, eyes = _bench_canvas(face_bench, 57, "sunglasses", -20.0)
    one_view = landmarks.YuNet(mirror=False)
    assert _boxed(one_view(photo), eyes)
    assert not _boxed(one_view(photo, max_side=320), eyes)
    photo, eyes = _bench_canvas(face_bench, 25, "glove", -20.0)
    assert not _boxed(one_view(photo), eyes)
    assert _boxed(landmarks.YuNet(mirror=True)(photo), eyes)


def test_find_faces_keeps_no_second_box_that_shares_a_faces_eyes(face_bench):
    """Clean face 118: YuNet adds a larger box over its cheek and the blur beside it, which
    overlaps the face by less than half but holds its eyes. Two faces cannot share eyes."""
    photo, eyes = _bench_canvas(face_bench, 118, None, 0.0)
    (found,) = faces.find_faces(photo)
    assert _boxed([found], eyes)
    x, y, w, h = found.box  # a face cheek to cheek with it, as in a group photo, is another face
    shift = np.array([0.7 * w, 0.0])
    beside = landmarks.FaceDetection((x + shift[0], y, w, h), 0.3, found.keypoints + shift)
    assert not faces._seen_before(beside, found)


def test_a_cap_over_the_brow_is_not_a_second_face(face_bench):
    """Sample face 14 behind a cap (a single frontal portrait): a BlazeFace tile that cuts the
    face below its eyes takes the cap's brim and bow for a face above the real one, and a Haar
    cascade boxes the cap's side; the face mesh sees no face in either, beside one it sees."""
    photo, eyes = _bench_canvas(face_bench, 14, "cap", 0.0)
    assert len(faces.find_faces(photo, mesh=False)) == 3  # without the mesh: no such rule
    (found,) = faces.find_faces(photo)
    assert _boxed([found], eyes)


def test_find_faces_in_a_tilted_and_shrunk_photo():
    photo = data.astronaut()
    turn = cv2.getRotationMatrix2D((223.0, 125.0), -20, 0.5)
    small = cv2.warpAffine(photo, turn, (400, 300), borderMode=cv2.BORDER_REFLECT_101)
    # the reflected border holds mirrored copies of her face (one upside down), found as faces too
    eyes = align.apply(turn, [ASTRONAUT["right_eye"], ASTRONAUT["left_eye"]])
    (found,) = [f for f in faces.find_faces(small) if _boxed([f], eyes)]
    kps = dict(zip(landmarks.KEYPOINTS, found.keypoints, strict=True))
    for name, expected in ASTRONAUT.items():
        assert _near(kps[name], align.apply(turn, expected), 4), name


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (4, 2))
    angle, scale, shift = np.radians(17), 0.6, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = align.similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)


def test_alignment_puts_the_eyes_on_the_template_and_round_trips():
    (found,) = landmarks.BlazeFace()(data.astronaut())
    alignment = align.Alignment.from_keypoints(found.keypoints, 128)
    eyes = align.apply(alignment.matrix, found.keypoints[:2])
    np.testing.assert_allclose(eyes, align.TEMPLATE[:2] * 128, atol=3)
    back = align.apply(alignment.inverse, eyes)
    np.testing.assert_allclose(back, found.keypoints[:2], atol=1e-6)


def test_crop_and_inverse_warp_round_trip_pixels_within_one_pixel():
    photo = np.zeros((300, 400, 3), np.uint8)
    dots = [(150, 120), (230, 140), (190, 200)]
    for x, y in dots:
        cv2.circle(photo, (x, y), 4, (255, 255, 255), -1)
    alignment = align.Alignment(
        align.similarity([[150, 120], [230, 140]], [[40, 50], [90, 50]]), 128
    )
    crop = alignment.crop(photo)
    bounds = alignment.photo_bounds(photo.shape)
    back = alignment.to_photo(crop, bounds)
    x0, y0 = bounds[:2]
    for x, y in dots:
        patch = back[y - y0 - 8 : y - y0 + 9, x - x0 - 8 : x - x0 + 9, 0]
        yy, xx = np.mgrid[-8:9, -8:9]
        centre = np.array([(xx * patch).sum(), (yy * patch).sum()]) / patch.sum()
        assert np.hypot(*centre) <= 1.0, (x, y, centre)


@pytest.mark.parametrize("side", [60, 300])  # upscaled, and shrunk by area first
def test_a_crop_of_a_region_equals_the_crop_of_the_photo(side):
    rng = np.random.default_rng(0)
    photo = rng.uniform(0, 1, (400, 500)).astype(np.float32)
    alignment = align.Alignment.from_window(120.5, 70.25, side, 64)
    x0, y0, x1, y1 = alignment.photo_bounds(photo.shape, pad=8)
    whole = alignment.crop(photo)
    part = alignment.crop_region(photo[y0:y1, x0:x1], (x0, y0))
    np.testing.assert_allclose(part, whole, atol=1e-3)


def test_a_big_face_is_shrunk_without_aliasing():
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: sampled, they alias to black or white
    crop = align.Alignment.from_window(0, 0, 800, 64).crop(stripes)
    assert abs(crop.mean() - 127.5) < 5 and crop.std() < 10


def test_sample_faces_are_aligned_to_the_template():
    loaded = sample_faces.load(64)
    with_kps = np.array([f.keypoints[:4] for f in loaded if f.keypoints is not None])
    assert len(with_kps) >= 0.95 * len(loaded)
    eye_spread = with_kps[:, :2].std(axis=0).max() / 64  # of the crop side, per coordinate
    assert eye_spread < 0.03
    np.testing.assert_allclose(with_kps[:, :2].mean(0), align.TEMPLATE[:2] * 64, atol=1.5)
    loose = sample_faces.load(64, align=False)
    assert all(f.keypoints is None for f in loose)


@pytest.mark.parametrize(
    "photo",
    [
        np.zeros((10, 10, 3), np.uint8),  # tiny
        np.full((200, 300, 3), 128, np.uint8),  # flat gray, no face
        np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8),  # noise
    ],
)
def test_photos_without_a_face_give_no_face(photo):
    assert faces.find_faces(photo) == []


def test_a_gray_photo_still_gives_its_face():
    gray = cv2.cvtColor(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    (found, *_) = faces.find_faces(gray)
    assert found.keypoints is not None and _near(found.keypoints[0], ASTRONAUT["right_eye"], 6)


def test_bad_images_raise_one_clear_error():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        faces.find_faces(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        faces.find_faces(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="face detection model"):
        landmarks.BlazeFace(model_path="/nonexistent/model.tflite")
    with pytest.raises(FileNotFoundError, match="face detection model"):
        landmarks.YuNet(model_path="/nonexistent/model.onnx")


def test_face_bench_counts_the_eyes_an_occluder_hides(face_bench):
    bench = face_bench
    eyes = np.array([[20.0, 30.0], [44.0, 30.0], [32.0, 40.0], [32.0, 50.0]])
    mask = np.zeros((64, 64, 1), np.uint8)
    assert bench.eyes_hidden(mask, eyes) == 0
    mask[25:36, 10:30] = 1  # sunglasses over the right eye only
    assert bench.eyes_hidden(mask, eyes) == 1
    mask[:, :] = 0
    mask[31:, :] = 1  # a book from just under the eye line: the eyes' patches mostly show
    assert bench.eyes_hidden(mask, eyes) == 0
    mask[28:, :] = 1  # from two pixels above it: both hidden
    assert bench.eyes_hidden(mask, eyes) == 2
