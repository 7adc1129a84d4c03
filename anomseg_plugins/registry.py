"""anomseg's own registries.

``ANOMALY_SCORERS`` holds per-pixel anomaly scorers. Like mmseg's registries it is a child of
mmengine's root registry (here the MODELS root), so a scorer defined in a user's module is found by
``type`` once that module is listed in ``custom_imports``; ``locations`` lets a config that only
names ``anomseg_plugins`` scorers build them without importing the package first.
"""
from typing import Any

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry


class ScorerRegistry(Registry):
    """A registry that builds in its own scope whatever the runner's default scope is.

    Under a runner the default scope is ``mmseg``, and mmengine's ``Registry.build`` would then look a
    scorer up in mmseg's ``model`` registry, where it does not live. Scorers are always built from this
    registry (or the scope a config names explicitly with ``_scope_``).
    """

    def build(self, cfg: Any, *args, **kwargs) -> Any:
        if isinstance(cfg, dict) and '_scope_' not in cfg:
            cfg = type(cfg)(cfg, _scope_=self.scope)
        return super().build(cfg, *args, **kwargs)


ANOMALY_SCORERS = ScorerRegistry(
    'anomaly scorer', parent=MMENGINE_MODELS, scope='anomseg_plugins', locations=['anomseg_plugins.scorers'])
