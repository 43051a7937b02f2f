"""Loading real open_clip models (the paper profile), with the QuickGELU check peers got wrong.

OpenAI's CLIP weights were trained with QuickGELU. open_clip's plain ``ViT-B-32`` config uses GELU and only
*warns* when it is given OpenAI weights, which silently changes every score (ARO#35, SugarCrepe#7). Here the
activation follows the weights' tag unless you ask otherwise, and asking for the wrong one is an error.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from labclip_utils.models.encoder import Encoder

#: The precisions an open_clip encoder can compute in (open_clip's ``precision`` argument).
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")


def tag_needs_quick_gelu(name: str, pretrained: str | None) -> bool:
    """Whether open_clip's registry says these weights were trained with QuickGELU."""
    if not pretrained:
        return False
    return bool(open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))


def config_uses_quick_gelu(name: str) -> bool:
    """Whether the model config itself already uses QuickGELU (e.g. ``ViT-B-32-quickgelu``)."""
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip model {name!r}; see open_clip.list_models()")
    return bool(cfg.get("quick_gelu", False))


def resolve_quick_gelu(name: str, pretrained: str | None, quick_gelu: bool | None) -> bool:
    """The activation to build: the weights' own unless overridden; a mismatch with the weights is refused."""
    needed = tag_needs_quick_gelu(name, pretrained)
    built_in = config_uses_quick_gelu(name)
    if quick_gelu is None:
        return needed or built_in
    if needed and not quick_gelu:
        raise ValueError(
            f"{name}/{pretrained} weights were trained with QuickGELU, but quick_gelu=False was requested: "
            "the model would compute different embeddings than the published CLIP (see ARO issue #35). "
            "Leave quick_gelu unset, or use the '-quickgelu' model name."
        )
    if built_in and not quick_gelu:
        raise ValueError(f"model config {name!r} is defined with QuickGELU; quick_gelu=False contradicts it")
    return quick_gelu


def text_forward(model: torch.nn.Module, tokens: torch.Tensor, pool: str = "eot") -> torch.Tensor:
    """CLIP's causal text transformer, run only up to the batch's last end-of-text token.

    ``model`` is an open_clip ``CLIP`` or ``TextTransformer`` (both have ``token_embedding``, ``transformer``,
    ``attn_mask``...). CLIP pads every caption to 77 tokens, but with a causal mask the padding after the last
    end-of-text token cannot change any output before it, so short captions ("a red cube and a blue sphere", ~10
    tokens) cost about a tenth. ``pool="eot"`` reads the end-of-text token (CLIP); ``pool="mean"`` averages the
    outputs up to and including it (the miniature's text tower).
    """
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    if pool == "eot":
        x = x[torch.arange(x.shape[0], device=x.device), eot]
    elif pool == "mean":
        mask = (torch.arange(length, device=x.device)[None, :] <= eot[:, None]).to(x.dtype)
        x = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    else:
        raise ValueError(f"unknown text pooling {pool!r}; use 'eot' or 'mean'")
    proj = model.text_projection
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def trimmed_text_forward(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """:func:`text_forward` bound to ``model``, or None for models where it does not hold (other pooling, no causal
    mask)."""
    needed = ("token_embedding", "positional_embedding", "transformer", "attn_mask", "ln_final", "text_projection")
    if not all(hasattr(model, a) for a in needed) or getattr(model, "text_pool_type", None) != "argmax":
        return None
    if model.attn_mask is None:
        return None
    return lambda tokens: text_forward(model, tokens)


def _checked_text_forward(model: torch.nn.Module, tokenize, device: str):
    """The trimmed forward if it reproduces ``model.encode_text`` on a probe batch, else None (with a warning)."""
    fast = trimmed_text_forward(model)
    if fast is None:
        return None
    probe = tokenize(["a red cube and a blue sphere", "a", "two large gray metal cylinders behind a cyan cone"])
    with torch.inference_mode():
        ref, got = model.encode_text(probe.to(device)), fast(probe.to(device))
    # Compared as unit vectors, within a few rounding steps of the precision they were computed in (fp16 and bf16
    # reorder a sum differently when the sequence is trimmed: 2e-4 and 1.4e-3 on ViT-B-32, against 1e-7 in fp32).
    tolerance = max(1e-5, 4 * torch.finfo(ref.dtype).eps)
    if got.shape != ref.shape or not torch.allclose(F.normalize(got.float(), dim=-1), F.normalize(ref.float(), dim=-1),
                                                    atol=tolerance, rtol=0):
        warnings.warn("trimmed text encoding disagrees with open_clip's encode_text; using the slow path",
                      stacklevel=3)
        return None
    return fast


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def load_open_clip(
    name: str, pretrained: str | None = None, device: str = "cpu", quick_gelu: bool | None = None,
    cache_dir: str | None = None, precision: str = "fp32",
) -> Encoder:
    """An :class:`Encoder` for any open_clip model name and weights tag or checkpoint file (``pretrained=None``:
    random init), in ``precision`` (``"fp32"``, ``"fp16"`` or ``"bf16"``: open_clip's own low-precision casts)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if open_clip.get_model_config(name) is None and not name.startswith(("hf-hub:", "local-dir:")):
        raise ValueError(f"unknown open_clip model {name!r} (nor a custom encoder such as 'miniature'); see "
                         "open_clip.list_models()")
    if pretrained and not open_clip.get_pretrained_cfg(name, pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name)
        if not Path(pretrained).is_file():
            raise ValueError(f"unknown weights {pretrained!r} for {name!r}; known tags: {tags} "
                             "(or give the path of a checkpoint file)")
    force = resolve_quick_gelu(name, pretrained, quick_gelu)
    # open_clip logs "No pretrained weights loaded" for random init, which is exactly what was asked for
    quiet = _DropMessage("No pretrained weights loaded") if pretrained is None else None
    root = logging.getLogger()
    if quiet:
        root.addFilter(quiet)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device, force_quick_gelu=force, cache_dir=cache_dir,
            precision=precision,
        )
    finally:
        if quiet:
            root.removeFilter(quiet)
    tokenize = open_clip.get_tokenizer(name)
    label = pretrained if pretrained is None or not Path(pretrained).is_file() else f"file:{Path(pretrained).name}"
    return Encoder(model, preprocess, tokenize, name=name, pretrained=label, device=device,
                   text_forward=_checked_text_forward(model, tokenize, device),
                   code_module="labclip_utils.models.openclip", precision=precision)
