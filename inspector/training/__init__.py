"""Training, evaluation, comparison, registration and export of the station's detection models."""
