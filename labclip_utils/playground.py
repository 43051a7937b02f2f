"""The playground: pick a scene, type two captions, and see which one CLIP and LABCLIP prefer.

:class:`Playground` does the work (scores and a figure) and is usable without widgets; :meth:`Playground.widget`
wraps it in core ipywidgets for Jupyter and Colab.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch

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
        right.legend(fontsize=8, loc="lower right")
        winners = ", ".join(f"{m} prefers {table.loc[m, 'prefers']}" for m in models)
        right.set_title(f"A: {caption_a}\nB: {caption_b}\n{winners}", fontsize=8)
        fig.tight_layout()
        return fig

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
