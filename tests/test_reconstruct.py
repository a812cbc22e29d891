import cv2
import numpy as np
import pytest
from skimage import data

from data_pipeline import align, categories
from jaxinpaint.reconstruct import Reconstructor, draw_overlay

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


def _to_photo(face, points):
    """Crop pixels of a face result -> photo pixels."""
    return align.apply(cv2.invertAffineTransform(face.matrix), points)


def test_reconstructs_only_the_hole_of_a_real_face():
    photo = data.astronaut()
    rec = Reconstructor(paint_green, lower_face_mask, size=64, base="none")(photo)
    assert rec.image.shape == photo.shape and rec.changed
    (face,) = rec.faces
    assert face.aligned
    changed = np.any(rec.image != photo, axis=-1)
    ys, xs = np.nonzero(changed)
    # Every changed pixel lies around the mouth: the hole's corners in the photo, plus the seam.
    corners = _to_photo(face, [[0.35 * 64, 0.6 * 64], [0.65 * 64, 0.8 * 64]])
    seam = 2 * 3 + 4 * 1 / face.matrix[0, 0]  # feather, and the dilation in photo pixels
    assert xs.min() >= corners[:, 0].min() - seam and xs.max() <= corners[:, 0].max() + seam
    assert ys.min() >= corners[:, 1].min() - seam and ys.max() <= corners[:, 1].max() + seam
    # The centre of the hole is the inpainter's colour, at full resolution, on the mouth.
    cx, cy = np.round(_to_photo(face, [32, 0.7 * 64])).astype(int)
    assert 205 < cx < 235 and 130 < cy < 155  # the astronaut's mouth
    np.testing.assert_allclose(
        rec.image[cy - 2 : cy + 3, cx - 2 : cx + 3], GREEN * np.ones((5, 5, 1)), atol=6
    )
    assert 0.05 < face.hole_fraction < 0.15


def test_a_tilted_face_comes_back_tilted_and_in_place():
    photo = data.astronaut()
    turn = cv2.getRotationMatrix2D((223.0, 125.0), 20, 1.0)  # 20 degrees about the face
    tilted = cv2.warpAffine(photo, turn, photo.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)
    mouth = np.round(align.apply(turn, [219, 145])).astype(int)
    photo_mask = np.zeros(tilted.shape[:2], np.uint8)
    photo_mask[mouth[1] - 6 : mouth[1] + 7, mouth[0] - 12 : mouth[0] + 13] = 1
    rec = Reconstructor(paint_green, None, size=64, dilate=0, feather=0, base="none")(
        tilted, photo_mask
    )
    (face,) = rec.faces
    assert face.aligned
    angle = np.degrees(np.arctan2(face.matrix[1, 0], face.matrix[0, 0]))
    assert 14 < angle < 26  # the crop turns the face back upright
    changed = np.any(rec.image != tilted, axis=-1)
    # Exactly the user's pixels change (no feather); the hole is filled with the model's colour.
    np.testing.assert_array_equal(changed, photo_mask > 0)
    inner = cv2.erode(photo_mask, np.ones((5, 5), np.uint8)) > 0
    np.testing.assert_allclose(rec.image[inner], np.broadcast_to(GREEN, (inner.sum(), 3)), atol=8)


def test_no_occluder_returns_the_photo_unchanged():
    photo = data.astronaut()
    rec = Reconstructor(paint_green, lambda f: np.zeros(f.shape[:2]), size=64)(photo)
    assert not rec.changed and len(rec.faces) == 1
    np.testing.assert_array_equal(rec.image, photo)


def test_without_a_mask_source_a_photo_mask_is_required():
    with pytest.raises(ValueError, match="no mask source"):
        Reconstructor(paint_green, None, size=64)(data.astronaut())


def test_the_hole_alone_is_what_a_call_replaces_without_inpainting():
    photo = data.astronaut()
    kwargs = dict(size=64, mask_size=48, grow=1, dilate=2, base="none")
    full = Reconstructor(paint_green, lower_face_mask, **kwargs)(photo)
    finder = Reconstructor(None, lower_face_mask, **kwargs)
    hole = finder.hole(photo)
    assert hole.dtype == bool and hole.shape == photo.shape[:2] and hole.any()
    np.testing.assert_array_equal(hole, full.hole)
    assert not finder.hole(photo, np.zeros(photo.shape[:2])).any()  # the user's empty mask
    with pytest.raises(ValueError, match="no inpainter"):
        finder(photo)


def test_no_face_returns_the_photo_unchanged():
    photo = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    rec = Reconstructor(paint_green, lower_face_mask, size=64)(photo)
    assert rec.faces == () and not rec.changed
    np.testing.assert_array_equal(rec.image, photo)


@pytest.mark.parametrize("coarse_fill", ["harmonic", "biharmonic", None])
def test_the_fill_is_the_models_correction_of_a_full_resolution_smooth_fill(coarse_fill):
    from jaxinpaint.fills import smooth_fill, smooth_fill_around_hole

    photo = data.astronaut()
    photo_mask = np.zeros(photo.shape[:2], np.uint8)
    photo_mask[132:150, 205:240] = 1  # the mouth
    hole = photo_mask > 0
    fill = coarse_fill or "harmonic"  # the base of an inpainter that does not say

    class BrighterFill:  # the smooth fill the generator starts from, 20 levels brighter
        def __call__(self, face, hole_r):
            return np.clip(smooth_fill(face, hole_r, fill) + 20.5, 0, 255).astype(np.uint8)

    inpaint = BrighterFill()
    if coarse_fill:
        inpaint.coarse_fill = coarse_fill
    reconstructor = Reconstructor(inpaint, None, size=64, dilate=0, feather=0)
    assert reconstructor.base == fill  # "auto": the inpainter's own fill
    rec = reconstructor(photo, photo_mask)
    # The base is made again at the photo's resolution (solved: `base_steps=None`).
    want = smooth_fill_around_hole(photo, hole, fill, relax=reconstructor.base_steps) + 20
    got = rec.image.astype(np.float32)
    inner = cv2.erode(photo_mask, np.ones((5, 5), np.uint8)) > 0
    # The full-resolution fill plus the model's +20 (the fill's pyramid sits on another grid
    # here than on the whole photo, hence a few levels of difference, but no bias).
    assert abs((got[inner] - want[inner]).mean()) < 2
    assert np.abs(got[inner] - want[inner]).mean() < 8
    np.testing.assert_array_equal(rec.image[~hole], photo[~hole])
    with pytest.raises(ValueError, match="base"):
        Reconstructor(paint_green, None, size=64, base="telea")


def test_a_crop_leaving_the_photo_is_handled():
    photo = np.ascontiguousarray(data.astronaut()[40:220, 150:330])  # face close to the edges
    rec = Reconstructor(paint_green, lower_face_mask, size=64, align=False, margin=0.6)(photo)
    (face,) = rec.faces
    assert not face.aligned
    corners = _to_photo(face, [[0, 0], [64, 64]])
    assert corners.min() < 0 or (corners[1] > photo.shape[1::-1]).any()
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


def test_detections_come_back_in_photo_pixels_and_are_drawn():
    class Found:  # what detector.predict.Instance gives: category, score, a crop-sized mask
        def __init__(self, category, score, mask):
            self.category, self.score, self.mask = category, score, mask

    def detect(face):
        hole = lower_face_mask(face)
        return hole, [Found("mask", 0.9, hole > 0), Found("hand", 0.8, np.zeros_like(hole))]

    photo = data.astronaut()
    rec = Reconstructor(paint_green, detect, size=64, base="none")(photo)
    (face,) = rec.faces
    (found,) = face.detections  # the empty one lies nowhere in the photo and is left out
    assert found.category == "mask" and found.score == 0.9
    x0, y0 = np.floor(_to_photo(face, [[0.35 * 64, 0.6 * 64]]).min(0)).astype(int)
    x1, y1 = np.ceil(_to_photo(face, [[0.65 * 64, 0.8 * 64]]).max(0)).astype(int)
    assert abs(found.box[0] - x0) <= 2 and abs(found.box[1] - y0) <= 2
    assert abs(found.box[2] - x1) <= 2 and abs(found.box[3] - y1) <= 2
    (outline,) = found.outline
    assert outline.dtype == np.int32 and outline.shape[1] == 2
    assert (outline >= found.box[:2]).all() and (outline < found.box[2:]).all()
    assert set(rec.seconds) == {"find_faces", "mask", "inpaint", "base", "total"}
    assert set(face.seconds) == {"mask", "inpaint"}
    # The overlay: the face box, and the detection's outline and label in its class's colour.
    drawn = draw_overlay(photo, rec)
    assert drawn.shape == photo.shape and not np.shares_memory(drawn, photo)
    colour = categories.colour(categories.category_id("mask"))
    assert np.all(drawn[outline[:, 1], outline[:, 0]] == colour, axis=-1).mean() > 0.5
    x, y, _, h = face.box
    assert np.all(drawn[y + h // 2, x] == (0, 255, 0))  # framed by keypoints: green


def test_detections_mostly_off_the_face_leave_the_hole():
    class Found:
        def __init__(self, category, mask):
            self.category, self.score, self.mask = category, 0.9, mask

    def detect(face):  # a mask on the mouth, and a "scarf" in the crop's bottom-left corner
        r = face.shape[0]
        on, off = lower_face_mask(face) > 0, np.zeros((r, r), bool)
        off[int(0.8 * r) :, : int(0.25 * r)] = True
        return (on | off).astype(np.float32), [Found("mask", on), Found("scarf", off)]

    photo = data.astronaut()
    kwargs = dict(size=64, base="none", dilate=0, feather=0)
    kept = Reconstructor(paint_green, detect, **kwargs)(photo)
    every = Reconstructor(paint_green, detect, on_face=0.0, **kwargs)(photo)
    assert [d.category for d in kept.faces[0].detections] == ["mask"]
    assert [d.category for d in every.faces[0].detections] == ["mask", "scarf"]
    only_mouth = Reconstructor(paint_green, lower_face_mask, **kwargs)(photo).hole
    np.testing.assert_array_equal(kept.hole, only_mouth)
    assert (every.hole & ~only_mouth).sum() > 100
    # A square window around the box is not the template's framing: nothing is dropped there.
    unaligned = Reconstructor(paint_green, detect, align=False, **kwargs)(photo)
    assert len(unaligned.faces[0].detections) == 2
    with pytest.raises(ValueError, match="on_face"):
        Reconstructor(paint_green, detect, size=64, on_face=1.5)


def test_the_face_region_holds_the_template_points_and_not_the_corners():
    region = align.face_region(128)
    for x, y in align.TEMPLATE * 128:
        assert region[round(y), round(x)]
    assert not region[:8, :8].any() and not region[-8:, :8].any() and not region[-8:, -8:].any()
    assert 0.5 < region.mean() < 0.75
    assert align.face_region(128, grow=0).sum() < region.sum()


def test_the_mask_source_sees_the_face_at_its_own_size():
    seen = []

    def at_its_size(face):  # a detector trained at 128 px
        seen.append(face.shape)
        return lower_face_mask(face)

    photo = data.astronaut()
    kwargs = dict(size=64, base="none", dilate=0, feather=0)
    rec = Reconstructor(paint_green, at_its_size, mask_size=128, **kwargs)(photo)
    assert seen == [(128, 128, 3)]
    # The same framing: the hole lands where the model-sized source would put it.
    same = Reconstructor(paint_green, lower_face_mask, **kwargs)(photo)
    changed, same_changed = (np.any(r.image != photo, axis=-1) for r in (rec, same))
    overlap = (changed & same_changed).sum() / (changed | same_changed).sum()
    assert overlap > 0.9 and changed.any()
    with pytest.raises(ValueError, match="mask_size=4"):
        Reconstructor(paint_green, lower_face_mask, size=64, mask_size=4)


def test_grow_is_counted_in_the_mask_sources_pixels_so_it_follows_the_face_size():
    photo = data.astronaut()
    kwargs = dict(size=64, base="none", dilate=0, feather=0)
    margins = []
    for scale in (1, 2):
        big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        tight = Reconstructor(paint_green, lower_face_mask, **kwargs)(big).hole
        grown = Reconstructor(paint_green, lower_face_mask, grow=3, **kwargs)(big).hole
        assert tight.any() and not (tight & ~grown).any()  # grown around the same hole
        margins.append(np.sqrt(grown.sum()) - np.sqrt(tight.sum()))  # ~ the added border
    assert 1.6 < margins[1] / margins[0] < 2.4  # twice the face, twice the photo pixels
    with pytest.raises(ValueError, match="grow=-1"):
        Reconstructor(paint_green, lower_face_mask, size=64, grow=-1)


def test_the_overlay_outlines_a_user_mask_in_white():
    photo = data.astronaut()
    photo_mask = np.zeros(photo.shape[:2], np.uint8)
    photo_mask[135:148, 212:238] = 1
    rec = Reconstructor(paint_green, None, size=64, feather=0)(photo, photo_mask)
    drawn = draw_overlay(photo, rec)
    assert np.all(drawn[135, 212:238] == 255) and np.all(drawn[147, 212:238] == 255)
    np.testing.assert_array_equal(drawn[140, 215:235], photo[140, 215:235])  # inside: untouched


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
    (found,) = rec.find_faces(covered)
    x, y, w, h = found.box
    assert x < 230 < x + w and y < 100 < y + h  # the astronaut's face
    assert found.keypoints is not None  # BlazeFace sees it, eyes and all, behind the glasses
    right_eye, left_eye = found.keypoints[:2]
    assert np.hypot(*(right_eye - (204, 101))) < 8 and np.hypot(*(left_eye - (247, 104))) < 8


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("zoom", [0.5, 1.0, 2.0])
def test_no_pixel_beyond_dilate_plus_feather_from_the_mask_changes(size, zoom):
    photo = cv2.resize(data.astronaut(), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (round(225 * zoom), round(95 * zoom)), (round(30 * zoom), round(9 * zoom)),
                10, 0, 360, 1, -1)  # fmt: skip  # a tilted band over the eyes
    dilate, feather = 2, 3
    for base in ("harmonic", "none"):
        rec = Reconstructor(
            paint_green, None, size=size, dilate=dilate, feather=feather, base=base
        )(photo, mask)
        assert rec.changed
        changed = np.any(rec.image != photo, axis=-1)
        distance = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
        assert distance[changed].max() <= dilate + feather, (base, distance[changed].max())
        # The mask itself is replaced (green shows through wherever the model painted).
        assert changed[mask > 0].mean() > 0.95


MAGENTA = np.array([255, 0, 255], np.uint8)  # a colour the astronaut photo does not hold


def crossing_occluder(photo):
    """(occluded photo, mask): a flat 'cup' from the astronaut's mouth to far below her chin,
    its lower half outside the face's window (the 64 px crop ends at y ~ 180 there). BlazeFace
    takes parts of the flat blob for small faces: the tests reconstruct the largest face only."""
    assert not np.all(photo == MAGENTA, axis=-1).any()
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.ellipse(mask, (220, 195), (24, 45), 0, 0, 360, 1, -1)  # y 150..240
    occluded = photo.copy()
    occluded[mask > 0] = MAGENTA
    return occluded, mask > 0


def window_of(face, size, shape):
    """HxW bool: the photo pixels the face's RxR crop covers."""
    inverse = cv2.invertAffineTransform(face.matrix)
    ones = np.ones((size, size), np.float32)
    return cv2.warpAffine(ones, inverse, shape[1::-1], flags=cv2.INTER_LINEAR) > 0.5


@pytest.mark.parametrize("base", ["harmonic", "none"])
def test_an_occluder_reaching_past_the_window_is_replaced_whole(base):
    photo = data.astronaut()
    occluded, mask = crossing_occluder(photo)
    dilate, feather = 1, 3
    kwargs = dict(size=64, dilate=dilate, feather=feather, base=base, max_faces=1)
    rec = Reconstructor(paint_green, None, **kwargs)(occluded, mask)
    (face,) = rec.faces
    window = window_of(face, 64, photo.shape)
    assert (mask & window).sum() > 800 and (mask & ~window).sum() > 1500
    changed = np.any(rec.image != occluded, axis=-1)
    assert changed[mask].all()  # every masked pixel is replaced, inside the window or not
    assert not np.all(rec.image == MAGENTA, axis=-1).any()
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    assert distance[changed].max() <= dilate + feather
    # The model painted its window's part green; the smooth base filled the rest.
    assert np.all(rec.image[200:230, 210:230] != GREEN, axis=-1).all()
    assert (np.abs(rec.image[160:170, 210:230].astype(int) - GREEN).max(-1) < 40).all()
    assert rec.model_pixels + rec.base_pixels == rec.hole.sum()
    assert rec.model_pixels >= 0.9 * (mask & window).sum()
    assert rec.base_pixels >= 0.9 * (mask & ~window).sum()


def test_no_seam_where_the_window_ends():
    from jaxinpaint.fills import smooth_fill, smooth_fill_around_hole

    photo = data.astronaut()
    occluded, mask = crossing_occluder(photo)

    def brighter(face, hole_r):  # the model's correction: +20 on its smooth start
        return np.clip(smooth_fill(face, hole_r, "harmonic") + 20.5, 0, 255).astype(np.uint8)

    kwargs = dict(size=64, feather=0, base="harmonic", max_faces=1)
    rec = Reconstructor(brighter, None, **kwargs)(occluded, mask)
    base = smooth_fill_around_hole(occluded, mask, "harmonic", 1000)
    added = (rec.image.astype(np.float32) - base).mean(-1)
    column = added[150:241, 220]  # down the cup, across the window's lower edge
    assert column[5:20].min() > 17 and np.abs(column[-30:]).max() < 1  # +20 inside, 0 outside
    assert np.abs(np.diff(column)).max() < 5  # a ramp across the edge, not a 20-level step


def test_a_mask_on_a_photo_with_no_face_is_filled_by_the_smooth_base():
    from jaxinpaint.fills import smooth_fill_around_hole
    from jaxinpaint.records import photo_record

    photo = np.full((120, 160, 3), 90, np.uint8)
    photo[:, 80:] = 170
    mask = np.zeros(photo.shape[:2], bool)
    mask[40:70, 60:100] = True
    occluded = photo.copy()
    occluded[mask] = MAGENTA
    never = lambda face, hole: pytest.fail("no face: the model is not called")
    rec = Reconstructor(never, None, size=64, feather=2)(occluded, mask)
    assert rec.faces == () and rec.changed
    want = np.clip(smooth_fill_around_hole(occluded, mask, "harmonic", 1000) + 0.5, 0, 255)
    np.testing.assert_array_equal(rec.image[mask], want.astype(np.uint8)[mask])
    assert np.abs(rec.image[mask].astype(int) - photo[mask]).max() <= 40  # between 90 and 170
    record = photo_record(rec, mask="m.png")
    assert record["replaced_pixels"] == record["base_pixels"] == mask.sum()
    assert record["model_pixels"] == 0


def test_a_mask_sources_grown_hole_past_the_window_is_replaced_whole():
    photo = data.astronaut()
    occluded, mask = crossing_occluder(photo)

    def magenta(face):  # a detector of the cup: it sees the crop only, down to the window's edge
        return np.abs(face.astype(int) - MAGENTA).max(-1) < 60

    dilate = 3
    kwargs = dict(size=64, dilate=dilate, feather=2, max_faces=1)
    rec = Reconstructor(paint_green, magenta, **kwargs)(occluded)
    (face,) = rec.faces
    window = window_of(face, 64, photo.shape)
    assert rec.hole[mask & window].mean() > 0.95  # what the source sees of the cup
    assert (rec.hole & ~window).sum() > 2 * dilate * 20  # the growth crosses the window's edge
    changed = np.any(rec.image != occluded, axis=-1)
    assert changed[rec.hole].all()
    assert rec.base_pixels >= 0.9 * (rec.hole & ~window).sum()
    np.testing.assert_array_equal(Reconstructor(None, magenta, **kwargs).hole(occluded), rec.hole)


def test_reach_asks_the_mask_source_again_past_the_window():
    photo = data.astronaut()
    occluded, mask = crossing_occluder(photo)
    far = np.zeros_like(mask)
    far[20:40, 20:40] = True  # another 'cup', joined to nothing the face's crop holds
    occluded[far] = MAGENTA

    def magenta(face):
        return np.abs(face.astype(int) - MAGENTA).max(-1) < 60

    kwargs = dict(size=64, dilate=3, max_faces=1)  # the wider view is coarser: its edge blurs
    cut = Reconstructor(paint_green, magenta, **kwargs)(occluded)
    assert cut.hole[mask].mean() < 0.7  # the crop ends at the window: the rest stays
    rec = Reconstructor(paint_green, magenta, reach=True, **kwargs)(occluded)
    assert rec.hole[mask].all() and not rec.hole[far].any()
    assert not np.all(rec.image == MAGENTA, axis=-1)[mask].any()
