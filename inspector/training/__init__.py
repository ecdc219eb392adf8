"""Training, evaluation, registration and export of the station's detection models."""
