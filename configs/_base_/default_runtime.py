# Runtime shared by every anomseg config: mmseg's runtime + the anomseg plugins.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['anomseg_plugins'], allow_failed_imports=False)
log_processor = dict(by_epoch=True)
# `tools/test.py --tta` wraps the model in it; the dataset bases give the tta_pipeline at their test scale.
# LogitSegTTAModel averages the views' logits: mmseg's SegTTAModel averages softmax probabilities, which would turn
# the logit scorers (MaxLogit, Energy, SML, HEAT) into probability scorers.
tta_model = dict(type='LogitSegTTAModel')
