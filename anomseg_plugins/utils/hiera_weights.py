"""ImageNet Hiera weights for mmseg's ``TIMMBackbone`` at another input size (``configs/hiera/``).

Hiera (Ryali et al., "Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles", ICML 2023;
timm's ``timm/models/hiera.py``) fixes its token layout when it is built: ``img_size`` sets the unroll /
reroll order of the 4x4 patches and the absolute position embedding has one entry per patch
(``(1, 56*56, C)`` for ``hiera_*_224``, ``(1, 184*320, C)`` at 736x1280). The 224x224 ImageNet weights
therefore do not load into a full-resolution model through timm: timm's Hiera loader leaves the
position-embedding resampling out (commented out in its ``checkpoint_filter_fn``), and
``TIMMBackbone(checkpoint_path=...)`` loads into timm's feature wrapper, whose keys start with ``model.``.

:func:`convert_hiera_state_dict` applies timm's key mapping (so official ``model_state`` files work too),
resamples the position embedding bicubically to the new patch grid (timm's ``resample_abs_pos_embed``), drops
the classifier head and prefixes the keys for ``TIMMBackbone``; :func:`convert_hiera_checkpoint` does it for a
file and checks the result against the backbone it is meant for, so that
``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=FILE))`` (a lenient load) finds every weight.
"""
import os
import os.path as osp
from typing import Any, Dict, Sequence, Tuple

import torch

#: Where the timm model sits inside mmseg's ``TIMMBackbone`` (``timm_model``, a feature wrapper holding ``model``).
BACKBONE_PREFIX = 'timm_model.model.'


def read_weights(path: str) -> Dict[str, torch.Tensor]:
    """The weights of a timm / official Hiera file: ``.safetensors``, or a torch file read with ``weights_only``.

    A torch file may hold the weights at its top level or under ``model_state`` (official Hiera), ``state_dict``
    or ``model``.
    """
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    from .safe_checkpoint import safe_torch_load
    data = safe_torch_load(path, map_location='cpu')
    for key in ('model_state', 'state_dict', 'model'):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            return data[key]
    return data


def convert_hiera_state_dict(state_dict: Dict[str, torch.Tensor],
                             img_size: Sequence[int],
                             patch_stride: Sequence[int] = (4, 4),
                             prefix: str = BACKBONE_PREFIX) -> Dict[str, torch.Tensor]:
    """Hiera classification weights -> ``TIMMBackbone`` weights for a model built with ``img_size``.

    Args:
        state_dict: timm (``hiera_*_224``) or official Hiera weights.
        img_size: ``(h, w)`` the backbone is built with; both multiples of 32 for the 8x8 mask units.
        patch_stride: Hiera's patch stride (4 for every timm variant).
        prefix: prepended to every key (``TIMMBackbone``'s ``timm_model.model.``).

    Returns:
        The weights without the classifier head (``head.*``), the absolute ``pos_embed`` ``(1, N, C)`` resampled
        from its square grid to ``(img_size[0] / 4) x (img_size[1] / 4)`` patches; ``abswin`` variants (a
        ``(1, C, h, w)`` embedding that Hiera interpolates itself) are left as they are.
    """
    from timm.layers import resample_abs_pos_embed
    from timm.models.hiera import checkpoint_filter_fn
    grid = [int(s) // int(p) for s, p in zip(img_size, patch_stride)]
    out = {}
    for key, value in checkpoint_filter_fn(dict(state_dict)).items():
        if key.startswith('head.'):
            continue
        if key == 'pos_embed' and value.dim() == 3:
            value = resample_abs_pos_embed(value, new_size=grid, num_prefix_tokens=0)
        out[prefix + key] = value.contiguous()
    return out


def convert_hiera_checkpoint(src: str,
                             dst: str,
                             img_size: Sequence[int],
                             model_name: str = 'hiera_base_224') -> Tuple[int, Dict[str, Any]]:
    """Convert the Hiera weights file ``src`` for ``TIMMBackbone(model_name, img_size=img_size)`` into ``dst``.

    The converted weights are compared with that backbone (built here, without weights) and must fit it
    exactly; ``dst`` is an mmengine checkpoint (``state_dict`` + ``meta``) for ``init_cfg=dict(type='Pretrained',
    checkpoint=dst)``.

    Returns:
        ``(number of tensors written, meta)``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        anomseg_plugins.utils.checkpoint_fit.CheckpointMismatchError: the weights do not fit the backbone (another
            Hiera variant than ``model_name``), naming the keys and shapes.
    """
    from mmseg.registry import MODELS

    from .checkpoint_fit import check_checkpoint_fits
    if not osp.isfile(src):
        raise FileNotFoundError(f'Hiera weights {src!r} do not exist')
    state_dict = convert_hiera_state_dict(read_weights(src), img_size)
    backbone = MODELS.build(
        dict(
            type='TIMMBackbone',
            model_name=model_name,
            pretrained=False,
            features_only=True,
            out_indices=(0, 1, 2, 3),
            img_size=tuple(img_size)))
    check_checkpoint_fits(backbone, state_dict, filename=f'{src} (converted for {model_name} at {tuple(img_size)})')
    meta = dict(source=osp.abspath(src), model_name=model_name, img_size=list(img_size))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    return len(state_dict), meta
