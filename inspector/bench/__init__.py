"""``make bench``: measure the station against plain ultralytics, in one run, on this machine.

Each module measures one thing: :mod:`~inspector.bench.speed` the detector backends,
:mod:`~inspector.bench.accuracy` their mAP50, :mod:`~inspector.bench.api` the API round trip,
:mod:`~inspector.bench.live` the live view beside the camera, :mod:`~inspector.bench.floor` the
overhead floor; :mod:`~inspector.bench.report` writes the results. ``python -m inspector.bench``
runs them in order (:mod:`~inspector.bench.__main__`).
"""
