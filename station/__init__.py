"""The bench app: camera sources, capture trigger and the operator page."""
