"""Learning from the bench: label candidates, active-learning samples, exports, drift, replay, model comparison.

The modules that decide (candidates, sampling, drift, the comparison statistics) are pure;
``source`` reads the store, ``export`` writes datasets, ``replay`` re-runs stored inspections.
"""
