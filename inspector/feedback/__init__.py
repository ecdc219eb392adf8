"""Learning from the bench: label candidates, active-learning samples, exports, drift, replay.

The modules that decide (candidates, sampling, drift) are pure;
``source`` reads the store, ``export`` writes datasets, ``replay`` re-runs stored inspections.
"""
