"""Experiment tracking, the model registry, and reproducing and comparing runs, on MLflow."""
