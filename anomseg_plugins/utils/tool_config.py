"""Config handling shared by ``tools/train.py``, ``tools/test.py`` and the other tools.

Mirrors what mmseg's own tools do (Config -> ``--cfg-options`` -> work dir), in one place.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     work_dir: Optional[str] = None,
                     launcher: str = 'none') -> Config:
    """Load ``config``, merge ``--cfg-options`` and settle ``work_dir`` (CLI > config > ``work_dirs/<name>``).

    Raises:
        FileNotFoundError: the config file does not exist (named in the message).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist (configs live under configs/).')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg
