import numpy as np
import pytest
from skimage import data

from jaxinpaint.reconstruct import Reconstructor, face_window

GREEN = np.array([0, 255, 0], np.uint8)


def lower_face_mask(face):
    """A 'mask' over the mouth and chin of a face crop."""
    r = face.shape[0]
    hole = np.zeros(face.shape[:2], np.float32)
    hole[int(0.6 * r) : int(0.8 * r), int(0.35 * r) : int(0.65 * r)] = 1.0
    return hole


def paint_green(face, hole):
    out = face.copy()
    out[hole] = GREEN
    return out


def test_reconstructs_only_the_hole_of_a_real_face():
    photo = data.astronaut()
    rec = Reconstructor(paint_green, lower_face_mask, size=64)(photo)
    assert rec.image.shape == photo.shape and rec.changed
    (face,) = rec.faces
    x0, y0, side = face.window
    assert face.window == face_window(face.box)
    changed = np.any(rec.image != photo, axis=-1)
    ys, xs = np.nonzero(changed)
    # Every changed pixel lies inside the face window, in its lower half.
    assert xs.min() >= x0 and xs.max() < x0 + side
    assert ys.min() >= y0 + side // 2 and ys.max() < y0 + side
    # The centre of the hole is the inpainter's colour, at full resolution.
    cy, cx = y0 + int(0.7 * side), x0 + side // 2
    np.testing.assert_allclose(
        rec.image[cy - 2 : cy + 3, cx - 2 : cx + 3], GREEN * np.ones((5, 5, 1)), atol=6
    )
    assert 0.05 < face.hole_fraction < 0.15


def test_no_occluder_returns_the_photo_unchanged():
    photo = data.astronaut()
    rec = Reconstructor(paint_green, lambda f: np.zeros(f.shape[:2]), size=64)(photo)
    assert not rec.changed and len(rec.faces) == 1
    np.testing.assert_array_equal(rec.image, photo)


def test_no_face_returns_the_photo_unchanged():
    photo = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    rec = Reconstructor(paint_green, lower_face_mask, size=64)(photo)
    assert rec.faces == () and not rec.changed
    np.testing.assert_array_equal(rec.image, photo)


def test_face_window_leaving_the_photo_is_handled():
    photo = np.ascontiguousarray(data.astronaut()[40:220, 150:330])  # face close to the edges
    rec = Reconstructor(paint_green, lower_face_mask, size=64, margin=0.6)(photo)
    (face,) = rec.faces
    x0, y0, side = face.window
    assert x0 < 0 or y0 < 0 or x0 + side > photo.shape[1] or y0 + side > photo.shape[0]
    assert rec.image.shape == photo.shape and rec.changed


def test_bad_inputs_raise_clear_errors():
    photo = data.astronaut()
    rec = Reconstructor(paint_green, lower_face_mask, size=64)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        rec(photo.astype(np.float32))
    with pytest.raises(ValueError, match="mask source returned"):
        Reconstructor(paint_green, lambda f: np.ones((3, 3)), size=64)(photo)
    with pytest.raises(ValueError, match="inpainter returned"):
        Reconstructor(lambda f, h: f.astype(np.float32), lower_face_mask, size=64)(photo)
    with pytest.raises(ValueError, match="size >= 8"):
        Reconstructor(paint_green, lower_face_mask, size=4)


def test_a_photo_mask_replaces_the_mask_source():
    photo = data.astronaut()
    photo_mask = np.zeros(photo.shape[:2], np.uint8)
    photo_mask[135:148, 212:238] = 1  # the mouth
    never = lambda face: pytest.fail("the mask source must not be called")
    rec = Reconstructor(paint_green, never, size=64, dilate=0, feather=0)(photo, photo_mask)
    changed = np.any(rec.image != photo, axis=-1)
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 130 and ys.max() <= 153
    assert xs.min() >= 207 and xs.max() <= 243
    with pytest.raises(ValueError, match="the mask is"):
        Reconstructor(paint_green, never, size=64)(photo, photo_mask[:10])


def test_faces_behind_sunglasses_and_mask_only_photos_are_found():
    from data_pipeline import compose, occluders
    from data_pipeline.faces import Face, detect_faces

    photo = data.astronaut()
    face = Face("astronaut", photo, tuple(float(v) for v in detect_faces(photo)[0]), "nasa")
    library = occluders.OccluderLibrary.load()
    rng = np.random.default_rng(3)
    parts = next(
        p for v in library.items["sunglasses"] if (p := compose.composite(face, v, rng)) is not None
    )
    covered = parts["occluded"]
    assert detect_faces(covered) == []  # the default cascade needs the eyes
    rec = Reconstructor(paint_green, lambda f: np.zeros(f.shape[:2]), size=64)
    (box,) = rec.find_faces(covered)
    x, y, w, h = box
    assert x < 230 < x + w and y < 100 < y + h  # the astronaut's face
    # No face at all, but a mask: a face-sized window around the masked pixels.
    blank = np.full((200, 300, 3), 128, np.uint8)
    mask = np.zeros(blank.shape[:2], np.uint8)
    mask[90:110, 140:170] = 1
    (box,) = rec.find_faces(blank, mask)
    assert box[2] == box[3] >= 59 and box[0] < 140 and box[0] + box[2] > 170
