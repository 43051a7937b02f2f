"""The playground: pick a scene, type two captions, and see which one CLIP and LABCLIP prefer.

:class:`Playground` does the work (scores and a figure) and is usable without widgets; :meth:`Playground.widget`
wraps it in core ipywidgets for Jupyter and Colab; :meth:`Playground.web_data` exports what the website's
in-browser playground (``book/_static/playground.js``) needs to do the same with no kernel: the miniature's text
tower (its weights and its word ids), its head, the matrix A, and a gallery of scenes with their image embeddings.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image

from labclip_utils.book.figures import set_caption
from labclip_utils.labclip import LabclipMap
from labclip_utils.models.encoder import Encoder
from labclip_utils.scenes.dataset import SceneDataset


@dataclass
class Playground:
    """Scores captions against the scenes of ``scenes`` with plain CLIP and with a LABCLIP map."""

    encoder: Encoder
    labclip_map: LabclipMap
    scenes: SceneDataset

    def default_captions(self, index: int) -> tuple[str, str]:
        """The scene's caption and its attribute-swapped negative (the swap test's pair)."""
        return self.scenes.captions[index], self.scenes.negatives[index] or self.scenes.captions[index]

    @torch.no_grad()
    def scores(self, index: int, caption_a: str, caption_b: str) -> pd.DataFrame:
        """Cosine of the scene's image with each caption, for CLIP and LABCLIP, and which caption wins.

        Raises ``ValueError`` (with the known words) when the encoder cannot read a caption.
        """
        if not caption_a.strip() or not caption_b.strip():
            raise ValueError("type two non-empty captions")
        image = self.encoder.encode_images([self.scenes.image(index)], progress=False)
        texts = self.encoder.encode_texts([caption_a, caption_b], progress=False)
        rows = {}
        for model, t in (("CLIP", texts), ("LABCLIP", self.labclip_map.map_texts(texts))):
            a, b = (image @ t.T)[0].tolist()
            rows[model] = {"caption A": a, "caption B": b,
                           "prefers": "A" if a > b else "B" if b > a else "tie", "margin (A − B)": a - b}
        return pd.DataFrame(rows).T

    def figure(self, index: int, caption_a: str, caption_b: str) -> plt.Figure:
        """The scene, and each model's two scores as bars; the preferred caption is marked."""
        table = self.scores(index, caption_a, caption_b)
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
        left.imshow(self.scenes.image(index))
        left.set_axis_off()
        left.set_title(f"scene {index}", fontsize=9)
        models = list(table.index)
        table[["caption A", "caption B"]].astype(float).plot.barh(ax=right, color=["tab:blue", "tab:orange"])
        right.invert_yaxis()
        right.set_xlabel("cosine similarity")
        right.xaxis.set_major_locator(plt.MaxNLocator(nbins=4))  # few ticks: the axes is narrow, scores can be tiny
        # beside the axes: inside, it covered a bar whenever the scores put one under it (the paper profile's)
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        winners = ", ".join(f"{m} prefers {table.loc[m, 'prefers']}" for m in models)
        right.set_title(f"A: {caption_a}\nB: {caption_b}\n{winners}", fontsize=8)
        fig.tight_layout()
        return set_caption(fig, "The playground: a scene, two captions, and the cosine CLIP and LABCLIP give each",
                           name="playground-scene-and-scores")  # the titles change with the captions

    def widget(self, index: int = 0):
        """Core ipywidgets: a scene slider, two caption boxes and a button that swaps the colours back in."""
        import ipywidgets as widgets
        from IPython.display import display

        a, b = self.default_captions(index)
        scene = widgets.IntSlider(value=index, min=0, max=len(self.scenes) - 1, description="scene")
        box_a = widgets.Text(value=a, description="caption A", layout=widgets.Layout(width="95%"))
        box_b = widgets.Text(value=b, description="caption B", layout=widgets.Layout(width="95%"))
        reset = widgets.Button(description="use this scene's caption and its swap")
        out = widgets.Output()

        def redraw(*_) -> None:
            out.clear_output(wait=True)
            with out:
                try:
                    fig = self.figure(scene.value, box_a.value, box_b.value)
                    display(fig)
                    plt.close(fig)
                except ValueError as err:
                    print(f"cannot score these captions: {err}")

        def use_scene(*_) -> None:
            box_a.value, box_b.value = self.default_captions(scene.value)

        for w in (scene, box_a, box_b):
            w.observe(redraw, names="value")
        reset.on_click(use_scene)
        redraw()
        return widgets.VBox([scene, box_a, box_b, reset, out])

    @torch.no_grad()
    def web_data(self, n_scenes: int = 48, checks: list[tuple[int, str, str]] | None = None) -> dict:
        """Everything the in-browser playground needs, as JSON-ready data: the text tower's weights (float32,
        base64, little-endian) and its word → token-id table, the head that turns the tower's output into CLIP's
        text embedding, A, and the first ``n_scenes`` scenes as PNGs with their image embeddings.

        ``checks`` (scene, caption A, caption B) are scored here with :meth:`scores` and stored beside, so that a
        test can type the same captions in the browser and compare. Only the miniature can run in a browser;
        another encoder raises ``ValueError``.
        """
        model = self.encoder.model
        tokenizer = self.encoder.tokenize
        if getattr(self.encoder, "name", "") != "miniature" or not hasattr(tokenizer, "words"):
            raise ValueError(f"the in-browser playground runs the miniature only, not {self.encoder!r}")
        tower = model.text_tower
        if model.text_pool != "mean" or tower.attn_mask is None:
            raise ValueError("the in-browser text tower implements a causal, mean-pooled tower only")
        blob = bytearray()
        tensors: dict[str, dict] = {}

        def add(name: str, value: torch.Tensor) -> None:
            array = value.detach().float().cpu().numpy().astype("<f4")
            tensors[name] = {"offset": len(blob) // 4, "shape": list(array.shape)}
            blob.extend(array.tobytes())

        for name, value in tower.state_dict().items():
            if name != "attn_mask":
                add(f"tower.{name}", value)
        add("text_mean", model.text_mean)
        add("text_std", model.text_std)
        add("text_proj", model.text_proj.weight)
        add("A", self.labclip_map.A)
        n = min(n_scenes, len(self.scenes))
        add("images", self.encoder.encode_images([self.scenes.image(i) for i in range(n)], progress=False))
        words, ends = tokenizer.word_ids(), tokenizer.text_ends()
        scenes = []
        for i in range(n):
            caption, negative = self.default_captions(i)
            scenes.append({"png": _png(self.scenes.image(i)), "caption": caption,
                           "negative": negative if negative != caption else None})
        data = {
            "model": "the miniature CLIP (offline profile)",
            "words": words, "colours": list(self.encoder.config.colors),
            "start": ends[0], "end": ends[1], "context_length": tokenizer.context_length,
            "heads": tower.transformer.resblocks[0].attn.num_heads, "layers": len(tower.transformer.resblocks),
            "layer_norm_eps": tower.ln_final.eps, "tensors": tensors,
            "weights": base64.b64encode(bytes(blob)).decode("ascii"), "scenes": scenes,
        }
        data["checks"] = [{"scene": i, "caption A": a, "caption B": b,
                           **{f"{model} {c}": float(row[f"caption {c}"]) for model, row in
                              self.scores(i, a, b).iterrows() for c in "AB"}}
                          for i, a, b in checks or []]
        return data

    def web_script(self, **web_data) -> str:
        """:meth:`web_data` as a script, ``window.LABCLIP_PLAYGROUND = {...};``: a page opened from a file may load
        a script but not ``fetch`` a JSON file."""
        return "window.LABCLIP_PLAYGROUND = " + json.dumps(self.web_data(**web_data), separators=(",", ":")) + ";\n"


def _png(image: np.ndarray) -> str:
    """A scene's pixels as a base64 PNG (a few kilobytes at 64×64)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
