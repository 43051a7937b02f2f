"""The paper profile in the precisions a GPU runs it in: open_clip at fp16 (the default on CUDA) and bf16.

open_clip's ``precision="fp16"`` casts convolutions and linear layers but keeps embeddings such as
``positional_embedding`` in fp32, so anything that reads "the model's dtype" from its first parameter feeds fp32
pixels to an fp16 ``conv1``. These tests run every path a chapter takes on the CPU: images, texts and a LABCLIP fit
on a random-init ViT-B-32 (compared with fp32 embeddings of the same weights), and two CLIP-FT steps on a two-layer
model of the same open_clip classes: torch has no fast CPU kernel for the fp16 matrix products of a backward pass
(two steps of ViT-B-32 take about five minutes on two cores), and the casts under test are the same at any size.
"""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch

from labclip_utils.finetune import FinetuneConfig, finetune_clip
from labclip_utils.labclip import LabclipConfig, fit_labclip
from labclip_utils.models import load_encoder
from labclip_utils.models.encoder import pixel_dtype
from labclip_utils.scenes import make_scenes

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
#: Largest |difference| allowed between a unit-norm embedding in low precision and in fp32 (same weights). Measured
#: on ViT-B-32 random init: 2e-4 (fp16) and about 3e-3 (bf16); the bounds leave room for other CPUs' kernels while
#: staying far below what a wrong cast or a wrong layer gives (> 0.1).
TOLERANCE = {"fp16": 5e-3, "bf16": 3e-2}


def _cpu_supports(dtype: torch.dtype) -> str | None:
    """Why this torch cannot run a convolution and a matrix product in ``dtype`` on the CPU (None when it can)."""
    try:
        conv = torch.nn.Conv2d(3, 2, 2).to(dtype)
        conv(torch.zeros(1, 3, 4, 4, dtype=dtype)).sum()
        torch.zeros(2, 2, dtype=dtype) @ torch.zeros(2, 2, dtype=dtype)
    except (RuntimeError, NotImplementedError) as err:
        return f"torch {torch.__version__} has no CPU kernel for {dtype} ({err}); `make rehearse` runs this path"
    return None


#: ViT-B-32's layout at two layers and width 64: the same open_clip classes and casts, small enough to train here.
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("open_clip_config") / "labclip-test-tiny.json"
    path.write_text(json.dumps(TINY))
    open_clip.add_model_config(path)
    return "labclip-test-tiny"


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(8, "clevr", 2, seed=3, image_size=64)


@pytest.fixture(scope="module")
def fp32_reference(scenes):
    torch.manual_seed(0)
    encoder = load_encoder("ViT-B-32", pretrained=None, device="cpu", precision="fp32")
    images = list(scenes.images())
    return encoder.encode_images(images, progress=False), encoder.encode_texts(scenes.captions, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_open_clip_encodes_and_fits_in_low_precision(precision, scenes, fp32_reference):
    dtype = DTYPES[precision]
    if (why := _cpu_supports(dtype)) is not None:
        pytest.skip(why)
    torch.manual_seed(0)  # the same random init as the fp32 reference, then cast by open_clip
    encoder = load_encoder("ViT-B-32", pretrained=None, device="cpu", precision=precision)
    # the case that crashed: fp32 embeddings beside fp16 layers, pixels cast to the wrong one
    assert encoder.model.positional_embedding.dtype == torch.float32
    assert pixel_dtype(encoder.model) == dtype == encoder.model.visual.conv1.weight.dtype
    assert encoder.text_dtype == dtype and encoder.precision == precision
    assert encoder.id.endswith(f"/{precision}")

    images = encoder.encode_images(list(scenes.images()), progress=False)
    texts = encoder.encode_texts(scenes.captions, progress=False)
    negatives = encoder.encode_texts([n or c for n, c in zip(scenes.negatives, scenes.captions, strict=True)],
                                     progress=False)
    for got in (images, texts):
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        assert torch.allclose(got.norm(dim=1), torch.ones(len(got)), atol=1e-4)
    ref_images, ref_texts = fp32_reference
    assert (images - ref_images).abs().max() <= TOLERANCE[precision]
    assert (texts - ref_texts).abs().max() <= TOLERANCE[precision]

    fit = fit_labclip((images, texts, negatives), config=LabclipConfig(epochs=2, batch_size=8), progress=False)
    assert torch.isfinite(fit.map.A).all() and len(fit.history) == 2



@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_clip_ft_steps_in_low_precision(precision, scenes, tiny_open_clip):
    dtype = DTYPES[precision]
    if (why := _cpu_supports(dtype)) is not None:
        pytest.skip(why)
    torch.manual_seed(0)
    encoder = load_encoder(tiny_open_clip, pretrained=None, device="cpu", precision=precision)
    assert encoder.model.positional_embedding.dtype == torch.float32 and pixel_dtype(encoder.model) == dtype
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    fit = finetune_clip(encoder, scenes, config=FinetuneConfig(steps=2, epochs=None, batch_size=4), progress=False)
    tuned, history = fit.encoder, fit.history
    assert list(history.index) == [1, 2] and np.isfinite(history["loss"]).all()
    assert fit.kept_epoch == 2 and fit.map is tuned.model.labclip and fit.config.steps == 2
    assert tuned.model.labclip.A.dtype == dtype  # A computes in the text tower's precision, as the paper's CLIP-FT
    changed = [k for k, v in tuned.model.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "two SGD steps changed no weight"
    assert all(torch.equal(v, before[k]) for k, v in encoder.model.state_dict().items()), "the original was trained"
    after = tuned.encode_images(list(scenes.images(range(4))), progress=False)
    assert after.dtype == torch.float32 and torch.isfinite(after).all()
