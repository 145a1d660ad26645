"""Simulated shoppers with known tastes: the ground truth the online monitor is checked against."""
