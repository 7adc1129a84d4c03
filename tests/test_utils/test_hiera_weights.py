"""ImageNet Hiera weights (timm's 224x224 layout) converted for a TIMMBackbone at another input size."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from anomseg_plugins.utils import CheckpointMismatchError
from anomseg_plugins.utils.hiera_weights import convert_hiera_checkpoint

init_default_scope('mmseg')
SIZE = (64, 96)  # (h, w) -> 16x24 patches


@pytest.fixture(scope='module')
def timm_weights(tmp_path_factory):
    """What timm's hub holds for hiera_tiny_224: a .safetensors file with the classifier head, 56x56 patches."""
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(0)
    state_dict = timm.create_model('hiera_tiny_224', pretrained=False).state_dict()
    path = str(tmp_path_factory.mktemp('hiera') / 'model.safetensors')
    save_file({k: v.contiguous() for k, v in state_dict.items()}, path)
    return path, state_dict


def test_converted_weights_load_into_the_backbone(timm_weights, tmp_path):
    src, source = timm_weights
    dst = str(tmp_path / 'hiera_tiny_64x96.pth')
    count, meta = convert_hiera_checkpoint(src, dst, SIZE, model_name='hiera_tiny_224')
    assert meta['img_size'] == [64, 96] and meta['model_name'] == 'hiera_tiny_224'
    assert tuple(source['pos_embed'].shape) == (1, 56 * 56, 96)
    assert count == len([k for k in source if not k.startswith('head.')])

    backbone = MODELS.build(
        dict(
            type='TIMMBackbone',
            model_name='hiera_tiny_224',
            pretrained=False,
            features_only=True,
            out_indices=(0, 1, 2, 3),
            img_size=SIZE,
            init_cfg=dict(type='Pretrained', checkpoint=dst)))
    backbone.init_weights()
    hiera = backbone.timm_model.model
    for key in ('patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.11.mlp.fc2.bias'):
        assert torch.equal(hiera.state_dict()[key], source[key]), key
    # the 56x56 grid of position embeddings resampled bicubically (antialiased) to 16x24 patches
    grid = source['pos_embed'].reshape(1, 56, 56, 96).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(16, 24), mode='bicubic', antialias=True).permute(0, 2, 3, 1)
    assert torch.allclose(hiera.pos_embed, expected.reshape(1, 16 * 24, 96))
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, *SIZE))
    assert [tuple(f.shape) for f in feats] == [(1, 96, 16, 24), (1, 192, 8, 12), (1, 384, 4, 6), (1, 768, 2, 3)]


def test_weights_of_another_variant_are_refused(timm_weights, tmp_path):
    src, _ = timm_weights
    with pytest.raises(CheckpointMismatchError) as info:
        convert_hiera_checkpoint(src, str(tmp_path / 'x.pth'), SIZE, model_name='hiera_small_224')
    msg = str(info.value)
    assert msg.startswith(f'checkpoint {src} (converted for hiera_small_224 at (64, 96)) does not fit the model')
    assert 'of the model missing from the checkpoint: timm_model.model.blocks.' in msg  # small has 16 blocks, tiny 12
    assert not (tmp_path / 'x.pth').exists()


@pytest.mark.slow  # runs the tool in a subprocess
def test_converter_tool_writes_what_the_library_writes(timm_weights, tmp_path):
    """``tools/model_converters/hiera2mmseg.py`` is the command line of ``convert_hiera_checkpoint``."""
    import os.path as osp
    import subprocess
    import sys
    src, _ = timm_weights
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    dst_tool, dst_lib = str(tmp_path / 'tool.pth'), str(tmp_path / 'lib.pth')
    proc = subprocess.run([
        sys.executable,
        osp.join(repo, 'tools', 'model_converters', 'hiera2mmseg.py'), src, dst_tool, '--img-size', *map(str, SIZE),
        '--model', 'hiera_tiny_224'
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, _ = convert_hiera_checkpoint(src, dst_lib, SIZE, model_name='hiera_tiny_224')
    assert proc.stdout.strip() == f'{count} tensors for hiera_tiny_224 at 64x96 written to {dst_tool}'
    tool, lib = torch.load(dst_tool)['state_dict'], torch.load(dst_lib)['state_dict']
    assert tool.keys() == lib.keys() and all(torch.equal(tool[k], lib[k]) for k in lib)
