"""Decontamination: drop training rows that contain benchmark test items."""
