import pytest

from data_pipeline.categories import CATEGORIES, CATEGORY_TO_ID, NUM_CLASSES, category_id


def test_nineteen_alphabetical_categories_with_background_zero():
    assert len(CATEGORIES) == 19 and NUM_CLASSES == 20
    assert [CATEGORY_TO_ID[c] for c in sorted(CATEGORIES)] == list(range(1, 20))
    assert category_id("book") == 1 and category_id("sunglasses") == 19


def test_unknown_category_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown occluder category 'hat'.*sunglasses"):
        category_id("hat")


def test_the_union_mask_of_instances_is_their_masks_or_zeros():
    import numpy as np

    from data_pipeline.categories import Instance, union_mask

    a = np.zeros((4, 5), bool)
    a[0, :2] = True
    b = np.zeros((4, 5), bool)
    b[3, 4] = True
    union = union_mask([Instance(1, 0.9, (0, 0, 2, 1), a), Instance(2, 0.8, (4, 3, 5, 4), b)], 4, 5)
    assert union.dtype == np.uint8
    np.testing.assert_array_equal(union, (a | b).astype(np.uint8))
    np.testing.assert_array_equal(union_mask([], 4, 5), np.zeros((4, 5), np.uint8))
