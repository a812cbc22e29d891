"""Evaluation: image-quality metrics, classical baselines, and reports by bucket."""
