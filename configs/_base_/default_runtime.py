# Runtime shared by every anomseg config: mmseg's runtime + the anomseg plugins.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['anomseg_plugins'], allow_failed_imports=False)
log_processor = dict(by_epoch=True)
