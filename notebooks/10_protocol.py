# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The protocol, point by point
#
# A number from this book and a number from the paper can only be compared when they were measured the same way.
# This page lists every choice that moves the paper's numbers: what the authors' code does, what this book does in
# the `paper` profile (which follows the paper wherever it can) and in the `offline` profile (a laptop, no
# downloads), and why they differ where they do. The paper's column was read from the authors' code
# ([kdariina/CLIP-not-BoW-unimodally](https://github.com/kdariina/CLIP-not-BoW-unimodally): `alignment/`,
# `data_loading/`, the ARO and SugarCrepe notebooks), ARO's `dataset_zoo`
# ([mertyg/vision-language-models-are-bows](https://github.com/mertyg/vision-language-models-are-bows)) and
# SugarCrepe's `main_eval.py` ([RAIVNLab/sugar-crepe](https://github.com/RAIVNLab/sugar-crepe)). Each point that
# can be checked is checked by a test against those definitions (`tests/test_protocol.py`).

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown]
# ## Every choice
#
# Read a row left to right: the paper, this book following the paper, this book on a laptop.

# %%
import pandas as pd
from IPython.display import HTML

from labclip_utils.book.plots import set_book_style
from labclip_utils.book.protocol import protocol_table
from labclip_utils.book.tables import html_table, show

set_book_style()
table = protocol_table()
HTML(html_table(table, classes="protocol-table"))

# %% [markdown]
# ## Which rows decide which numbers
#
# Results tables name the *experiment* each number belongs to. A paper number is printed beside one of ours only for
# the same experiment: the synthetic swap tests next to the paper's synthetic swap tests, each with an $A$ fitted on
# its own dataset; the real benchmarks next to the paper's only when $A$ was fitted on COCO, which only the paper
# profile does. The table below lists, for each experiment, the protocol rows that decide its numbers.

# %%
import matplotlib.pyplot as plt
import seaborn as sns

from labclip_utils.book.protocol import EXPERIMENTS, choices_for

applies = pd.DataFrame({key: [choice in choices_for(key) for choice in table.index] for key in EXPERIMENTS},
                       index=table.index).astype(int)
fig, ax = plt.subplots(figsize=(9, 6.5))
sns.heatmap(applies, cmap="Blues", cbar=False, linewidths=0.5, linecolor="white", ax=ax)
ax.set_xlabel("experiment")
ax.set_ylabel("")
ax.set_title("Which protocol rows decide each experiment's numbers")
fig.tight_layout()
show(pd.DataFrame([{"experiment": key, "what": title} for key, title in EXPERIMENTS.items()]).set_index("experiment"))

# %% [markdown] tags=["method"]
# ## Known bugs in the paper's code, and what this book does about them
#
# - **COCO restval.** The loop over the val2014 images of the Karpathy training split reads `coco_train[i]`, so those
#   30,504 places repeat train2014 images instead of adding the restval images. The paper profile does the same by
#   default, so that its numbers are the paper's protocol; `coco_labclip(..., restval="val2014")` trains on the
#   intended images.
# - **CLEVR caption order.** The CLEVR caption set is built by iterating Python *sets* of strings, whose order
#   changes with `PYTHONHASHSEED`: whether a scene is captioned "red cube and blue sphere" or "blue sphere and red
#   cube" changes between runs. What every run shares is that a caption and its negative start with the same
#   colour and the negative swaps the *shapes*. The paper profile fixes the order to the alphabetical one (one of the
#   orders their code produces) and keeps that shared structure; the offline profile keeps the scene's own order.
# - **Rows that cannot be swapped.** A CLEVR scene of two same-coloured objects has no swapped caption; the authors'
#   code uses the caption itself as the negative and trains on the row. The swap test leaves those rows out; in
#   training, the image's caption then appears twice among its candidate texts, so the image→text loss of that row
#   cannot go below $\log 2$. The paper profile trains on them too; `clevr_captions="scene"` leaves them out.
# - **Ties decided by a sort.** The paper's retrieval code reads recall from `argsort`, whose order among exactly
#   equal scores is whatever the sort does (stable on small inputs, not on large ones). The book counts one hit per
#   tie, the later item first, which is what a stable sort read from its end gives.
# - **Perturbations drawn afresh.** ARO's order benchmarks draw new scramblings at every run, so two runs of the same
#   model differ. This book draws them once from a seed and stores them, with the same functions and generators.

# %% tags=["remove-cell"]
# Exercise 2's answer, computed here so that the solution below quotes it.
from labclip_utils.benchmarks import BENCHMARKS, load_benchmark
from labclip_utils.benchmarks.scenes import load_binding_scenes
from labclip_utils.book.claims import claim
from labclip_utils.book.publish import publish
from labclip_utils.scenes.splits import bag_key

if profile.is_offline:
    from labclip_utils.benchmarks.offline import write_offline_benchmarks

    data_root = write_offline_benchmarks(profile.cache_dir / "benchmarks", image_size=profile.image_size)
else:
    from labclip_utils.benchmarks.downloads import fetch_dataset

    data_root = profile.data_dir
    fetch_dataset(BENCHMARKS["clevr"].dataset, data_root / BENCHMARKS["clevr"].dataset)
bags = {}
for kind, key in (("paper", "paper"), ("compositional", "book")):
    scenes_split = load_binding_scenes(data_root / BENCHMARKS["clevr"].dataset, kind)
    publish(f"ex_clevr_test_items_{key}", len(load_benchmark("clevr", data_root, profile_name=profile.name,
                                                              split_kind=kind, progress=False)))
    bags[key] = publish(f"ex_clevr_test_bags_{key}", len({bag_key(p) for p in scenes_split.select("test").pairs}))
present = publish("ex_clevr_bags_present", len({bag_key(p) for p in scenes_split.pairs}))
claim("the paper's split holds out 10 % of the bags present (rounded)", abs(bags["paper"] - 0.1 * present),
      below=1.0)
claim("the two splits hold out different numbers of bags", abs(bags["book"] - bags["paper"]), above=0)

# %% [markdown]
# ## Exercises
#
# 1. Which rows of the table would you change to run the paper's CLEVR experiment on a different CLIP, say
#    `ViT-B-16`/`laion2b_s34b_b88k`? Which setting does it?
# 2. Load the CLEVR analogue of {doc}`07_benchmarks` with the paper's split (`split_kind="paper"`) and with the book's
#    (`labclip_utils.benchmarks.load_benchmark("clevr", data_root, split_kind=...)`, where `data_root` is
#    {doc}`07_benchmarks`' data folder). How many test scenes does each give, and why do they differ?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. Only the backbone row: set `LABCLIP_SYNTHETIC_MODEL=ViT-B-16` and `LABCLIP_SYNTHETIC_PRETRAINED=laion2b_s34b_b88k`
#    before starting Jupyter. Every other row stays the paper's.
# 2. `load_benchmark("clevr", data_root, split_kind="paper")` gives {glue:text}`ex_clevr_test_items_paper:.0f`
#    test items, the book's split {glue:text}`ex_clevr_test_items_book:.0f`. The paper's split draws 10 % of the
#    bags of words the data contains, each with both its bindings: {glue:text}`ex_clevr_test_bags_paper:.0f` of the
#    {glue:text}`ex_clevr_bags_present:.0f` present. The book's holds out about 10 % of *all possible* bags by a
#    hash, whether or not the data contains them, and {glue:text}`ex_clevr_test_bags_book:.0f` of the present ones
#    fall among them. The counts differ by those few bags and the scenes that show them.
# ```
