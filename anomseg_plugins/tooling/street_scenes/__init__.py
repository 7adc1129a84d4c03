"""Offline stand-in for StreetHazards: procedurally drawn road scenes in the real layout and encoding.

No copy of StreetHazards (Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World
Settings", ICML 2022; CARLA scenes at 1280x720) can be downloaded everywhere, so the tests and the demo
run on scenes drawn by this package, written in exactly the layout and label encoding of the real
archives (:mod:`.writer`). Tooling, not a plugin: nothing here is registered.

Modules, by concern:

- :mod:`.classes` -- class table and on-disk label values;
- :mod:`.camera` -- pinhole camera, and the canvas painting image and labels together;
- :mod:`.textures` -- the known classes' colours and textures;
- :mod:`.scene` -- road geometry, lighting, painting order, camera response;
- :mod:`.layout` -- sky, ground, skyline, roadside frontage;
- :mod:`.objects` -- cars, pedestrians, poles and signs, clutter;
- :mod:`.anomalies` -- test-split anomalies: ordinary-coloured objects out of place;
- :mod:`.placement` -- the one placement loop everything is placed with;
- :mod:`.writer` -- file names, ``.odgt`` indexes, splits, parallel rendering.

Every class has a characteristic appearance drawn with jitter, so a small CNN can learn it; the
anomalies share the known classes' colours and textures, so a colour lookup cannot find them.
"""
from .anomalies import APPEARANCE_WEIGHTS, SHAPE_WEIGHTS
from .classes import ANOMALY_LABEL, CLASS_NAMES
from .scene import render_street_scene
from .writer import (DEFAULT_NUM_TEST, DEFAULT_NUM_TRAIN, DEFAULT_NUM_VAL, DEFAULT_SIZE, SPLIT_LAYOUT,
                     generate_street_hazards, image_rng, split_files)

__all__ = [
    'generate_street_hazards', 'render_street_scene', 'image_rng', 'split_files', 'CLASS_NAMES', 'ANOMALY_LABEL',
    'SPLIT_LAYOUT', 'DEFAULT_NUM_TRAIN', 'DEFAULT_NUM_VAL', 'DEFAULT_NUM_TEST', 'DEFAULT_SIZE', 'APPEARANCE_WEIGHTS',
    'SHAPE_WEIGHTS'
]
