"""Anomaly detection learned from good items only: damage of kinds no detector was trained on."""
