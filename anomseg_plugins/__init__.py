"""anomseg_plugins: anomaly segmentation of road scenes as mmsegmentation / mmengine plugins.

Importing this package (configs do it through ``custom_imports``) registers every component into
mmseg's registries (datasets, transforms, heads, losses, metrics, loops, hooks) and anomseg's own
``ANOMALY_SCORERS``, and turns on safe checkpoint loading (see :mod:`anomseg_plugins.utils.safe_checkpoint`).
"""
from .utils import install_safe_checkpoint_loading

install_safe_checkpoint_loading()

# Registration happens on import; the order follows the dependencies (scorers before the metric and loop).
from . import datasets  # noqa: E402,F401
from . import engine  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401
from . import scorers  # noqa: E402,F401
from . import visualization  # noqa: E402,F401
from .registry import ANOMALY_SCORERS  # noqa: E402

__version__ = '0.1.0'
__all__ = ['ANOMALY_SCORERS', '__version__']
