"""Convert timm's Hiera weights (e.g. ``hiera_base_224/model.safetensors``) for the Hiera configs.

``python tools/model_converters/hiera2mmseg.py SRC DST [--img-size H W] [--model hiera_base_224]``

timm does not resample Hiera's position embedding when the backbone is built for another input size, so
its 224x224 ImageNet weights are converted once (key mapping, bicubic resampling to the new patch grid,
classifier dropped, result checked against the backbone); then set
``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=DST)``. The conversion itself lives in
:func:`anomseg_plugins.utils.hiera_weights.convert_hiera_checkpoint`.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from anomseg_plugins.utils.hiera_weights import convert_hiera_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Convert timm's Hiera weights for anomseg's Hiera configs")
    parser.add_argument('src', help='timm weights file (.safetensors or .pth)')
    parser.add_argument('dst', help='output checkpoint for init_cfg=dict(type=\'Pretrained\', checkpoint=DST)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        default=(736, 1280),
        metavar=('H', 'W'),
        help='input size the backbone is built for (default: 736 1280, the padded 1280x720 frame)')
    parser.add_argument('--model', default='hiera_base_224', help='timm model name (default: hiera_base_224)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    count, _ = convert_hiera_checkpoint(args.src, args.dst, tuple(args.img_size), args.model)
    print(f'{count} tensors for {args.model} at {args.img_size[0]}x{args.img_size[1]} written to {args.dst}')


if __name__ == '__main__':
    main()
