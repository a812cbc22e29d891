import pytest

from data_pipeline.categories import CATEGORIES, CATEGORY_TO_ID, NUM_CLASSES, category_id


def test_nineteen_alphabetical_categories_with_background_zero():
    assert len(CATEGORIES) == 19 and NUM_CLASSES == 20
    assert [CATEGORY_TO_ID[c] for c in sorted(CATEGORIES)] == list(range(1, 20))
    assert category_id("book") == 1 and category_id("sunglasses") == 19


def test_unknown_category_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown occluder category 'hat'.*sunglasses"):
        category_id("hat")
