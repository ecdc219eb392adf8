"""Data for the station: the synthetic returns bench (``synth``) and the dataset tools (``formats``,
``validate``, ``stats``, ``split``), with the ``inspector data`` command group in ``cli``."""
