"""The synthetic returns bench: photo-like pictures of returned products, with defects and ground truth.

``Bench(seed)`` is one station's camera over its mat; ``Bench.sample(k)`` puts item
``k`` on it. ``render_sample(seed)`` draws a random bench and item, as a dataset
does; ``generate`` writes a YOLO dataset with JSON sidecars.
"""

from inspector.data.synth.dataset import contact_sheet, generate, image_seed, measure_speed, render_sample
from inspector.data.synth.defects import ALLOWED, DEFECTS
from inspector.data.synth.families import FAMILY_ZONES
from inspector.data.synth.scene import Bench, DefectMix, Sample

__all__ = [
    "ALLOWED",
    "DEFECTS",
    "FAMILY_ZONES",
    "Bench",
    "DefectMix",
    "Sample",
    "contact_sheet",
    "generate",
    "image_seed",
    "measure_speed",
    "render_sample",
]
