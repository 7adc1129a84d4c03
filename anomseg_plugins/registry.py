"""anomseg's own registries.

``ANOMALY_SCORERS`` holds per-pixel anomaly scorers. Like mmseg's registries it is a child of
mmengine's root registry (here the MODELS root), so a scorer defined in a user's module is found by
``type`` once that module is listed in ``custom_imports``; ``locations`` lets a config that only
names ``anomseg_plugins`` scorers build them without importing the package first.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

ANOMALY_SCORERS = Registry(
    'anomaly scorer', parent=MMENGINE_MODELS, locations=['anomseg_plugins.scorers'])
