"""Evaluation: image-quality metrics and reports by bucket; the classical fills it compares with
are `jaxinpaint.fills`."""
