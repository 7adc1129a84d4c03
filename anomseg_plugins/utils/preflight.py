"""What ``tools/train.py`` / ``tools/test.py`` do between loading the config and building the Runner."""
import os
import sys

from mmengine.config import Config

from .config_checks import ConfigError, check_config, mode_dataloaders
from .dist_env import setup_cpu_distributed


def prepare_tool_run(cfg: Config, mode: str, check_data: bool = False, tool: str = '') -> None:
    """Validate the config (and optionally the data), then set up CPU multi-process runs.

    1. :func:`~anomseg_plugins.utils.config_checks.check_config` for ``mode``;
    2. with ``check_data`` (``tools/train.py --check-data``), on rank 0 only: read every image and
       annotation of the datasets of ``mode`` (train, and val when ``val_cfg`` is set; or test) with
       :func:`~anomseg_plugins.datasets.integrity.check_config_data` and print its report. Both checks find
       missing data paths with the same function, so they name a missing folder alike;
    3. :func:`~anomseg_plugins.utils.dist_env.setup_cpu_distributed` (gloo when distributed without CUDA).

    Raises:
        SystemExit: a config problem or bad data, with the message (the tool exits with status 1 and the
            message on stderr instead of a traceback).
    """
    prefix = f'{tool}: ' if tool else ''
    try:
        check_config(cfg, mode=mode)
    except ConfigError as exc:
        raise SystemExit(f'{prefix}{exc}') from None
    if check_data and os.environ.get('RANK', '0') == '0':
        from anomseg_plugins.datasets.integrity import check_config_data
        report = check_config_data(cfg, mode_dataloaders(cfg, mode))
        print(report.format(), flush=True)
        if not report.ok:
            raise SystemExit(f'{prefix}--check-data found {len(report.issues)} problem(s) in '
                             f'{len(report.offenders)} file(s), listed above; fix or remove those files, or check '
                             f'the data_root / data_prefix of the config')
    setup_cpu_distributed(cfg)
    sys.stdout.flush()
