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
# # A CLIP you can train on a laptop
#
# The paper studies CLIP models {cite}`radford2021clip` trained on hundreds of millions of image–text pairs. Their
# weights cannot be downloaded where this book is built, and a laptop cannot train them. The `offline` profile
# therefore uses a {term}`miniature CLIP`. It is small enough to train on a CPU in a few minutes, and it is built to
# behave the way the paper says CLIP behaves:
#
# - **Within each modality the binding is there.** A linear probe reads which colour each object has from the
#   image embedding, and from the caption embedding.
# - **Across modalities it behaves like a bag of words.** The image scores "a red cube and a blue sphere" about
#   as highly as "a blue cube and a red sphere".
# - **One linear map on the text side fixes most of it.** This is LABCLIP.
#
# This chapter shows how the miniature is built, trains it (or loads it from the cache: the book trains it once
# and every chapter reuses it), and checks each of those three properties with controls beside every number.
# In the `paper` profile the same cells run on a real open_clip model.

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown] tags=["method"]
# ## How it is built: locked towers
#
# A real CLIP learns both encoders *and* their alignment from one contrastive objective. The miniature splits
# those jobs in two, so that it shows each one separately:
#
# 1. **An image tower that never sees text.** A small convolutional network learns to list which colours and
#    which shapes are in a scene: a *bag of concepts*, with no label that says which colour belongs to which
#    shape. Its convolutions are *local*: each output position sees about one object, and the embedding is the
#    average over positions, so it is close to a sum of per-object features.
# 2. **A text tower that never sees images.** open_clip's text transformer learns that "a red cube and a blue
#    sphere" and "a blue sphere and a red cube" mean the same thing, while "a blue cube and a red sphere" does
#    not. Its training uses text only, and its embedding is the mean over the caption's tokens.
# 3. **Alignment on top.** Both towers are frozen. Two linear heads are trained with CLIP's contrastive loss on
#    full captions, with the temperature fixed at CLIP's final value of 100. As in web data, a batch almost never
#    holds a caption together with its attribute-swapped twin.
#
# No stage sees the held-out combinations of the compositional split from {doc}`01_scenes`. That is why the tests
# below can use them.

# %%
import pandas as pd
from IPython.display import display

from labclip_utils.book.claims import claim, falls_by, near_chance, nonempty, rises_by, within_seeds
from labclip_utils.book.plots import plot_grouped_bars, plot_training_curves, set_book_style
from labclip_utils.book.publish import publish
from labclip_utils.book.tables import show
from labclip_utils.diagnosis import diagnose
from labclip_utils.scenes import evaluation_scenes

set_book_style()
encoder = profile.load_encoder("synthetic")

# %% [markdown] tags=["method"]
# The miniature is trained once and cached: a safetensors file keyed by its configuration and by the code that
# trains it. `make book` trains it before running the chapters; opened on its own (in Colab, say), this chapter
# trains it here, which takes minutes on a laptop CPU (the seed table below gives the training time of every seed
# on the machine that measured it). A file lock around the cache means that two chapters running in parallel never
# train it twice. The table says how long each stage took when it was trained, and the total.

# %%
if profile.is_offline:
    stages = {"data_s": "render the training scenes", "image_tower_s": "image tower", "text_tower_s": "text tower",
              "heads_s": "heads (the alignment)", "total_s": "total"}
    timings = {stages.get(stage, stage): values[0] for stage, values in encoder.history["timings"].items()}
    n_params = sum(p.numel() for p in encoder.model.parameters())
    print(f"{n_params:,} parameters; trained in this run: {encoder.trained_now}")
    display(show(pd.Series(timings, name="seconds (when it was trained)").rename_axis("stage"), precision=1))

# %% [markdown]
# ## Training curves
#
# Each stage learns its own task. The image tower ends up listing the colours and shapes of a scene almost
# perfectly. The text tower learns to match two orderings of the same description among the other captions of its
# batch. Every caption's re-bound twin (the same words, the colours swapped) is in the batch too, in two orderings,
# so a reader of bags of words would see three equally good matches and pick the right one about one time in
# three; the line under the figure says how often the tower picks it over its last 20 steps. The heads learn the
# CLIP loss.

# %%
if profile.is_offline:
    fig = plot_training_curves(encoder.history)
    last = {stage: pd.Series(encoder.history[stage][key]).tail(20).mean()
            for stage, key in (("image_tower", "exact_match"), ("text_tower", "accuracy"))}
    candidates = 2 * 2 * (encoder.config.batch_size // 2) - 1
    print(f"Text tower, last 20 steps: the right ordering among {candidates} other captions "
          f"{last['text_tower']:.0%} of the time (a bag of words: one time in three).")

# %% tags=["remove-cell"]
if profile.is_offline:
    claim("the image tower ends up listing the colours and shapes almost perfectly (exact match, last 20 steps)",
          last["image_tower"], above=0.9)
    claim("the text tower matches the orderings well above what a bag of words could (one third; last 20 steps)",
          last["text_tower"], above=0.65)

# %% [markdown] tags=["method"]
# ## The diagnosis
#
# Now we run the whole argument of the paper on the miniature. The scenes are new, drawn independently of
# training. **Held-out** scenes show colour–shape combinations that no training stage ever saw. **Seen** scenes
# show new images of combinations from training.
#
# - **Swap test**: does the image prefer its caption over the attribute-swapped caption? A bag of words scores 0.5.
# - **Probes**: for each shape, a logistic regression reads that shape's colour from the frozen embedding. The
#   controls use the same probe on other features. *Bag of words* is a multi-hot vector of which colours and shapes
#   are present. It has all the unbound information and none of the binding, so it is the ceiling for a model that
#   does not bind. *Bag of bigrams* is which pairs of neighbouring words a caption has. *Random init* is the same
#   architecture before training. *Chance* is 1/8.
# - **LABCLIP**: one matrix $A$ on the text embeddings, fitted with attribute-swapped hard negatives on training
#   combinations only, with the paper's recipe ({doc}`06_labclip` looks at it in detail).

# %%
scenes = evaluation_scenes(seed=0, image_size=profile.image_size, fraction=profile.fraction)
control = profile.load_encoder("synthetic", random_init=True)  # the same architecture before training
diagnosis = diagnose(encoder, scenes, control=control)
fig = plot_grouped_bars(diagnosis.probe_table(), chance=diagnosis.chance, title="Per-object colour probes")

# %% [markdown]
# The image embedding is well above the bag-of-words ceiling. That ceiling sits near one half, because with two
# colours in a scene the best unbound guess is a coin flip between them. So the image embedding carries binding
# that no bag-of-words feature has, on held-out combinations too, even though the image tower was trained on a
# bag-of-words target. The random-init image tower falls well below. The text embedding is high, and so is its
# {term}`random-init control`: a caption spells its binding out in word order (the {term}`bag of bigrams` reads it
# perfectly), so any text encoder keeps it. {doc}`04_probing` explains why the text probe cannot beat its control
# in this design, and why the paper's argument leans on the image side.

# %% tags=["remove-cell"]
held = {label: value.heldout for label, value in diagnosis.probes.items()}
claim("the image probe is well above the bag-of-words ceiling (held-out)", held["image emb."] - held["bag of words"],
      above=0.25)
near_chance("the bag-of-words ceiling sits near one half", held["bag of words"], chance=0.5, width=0.1)
claim("the random-init image tower falls well below", held["image emb."] - held["random-init image"], above=0.2)
claim("the text embedding is high", held["text emb."], above=0.65)
claim("and so is its random-init control", held["random-init text"] - held["text emb."], above=-0.05)
claim("the bag of bigrams reads the binding perfectly", held["bag of bigrams (text)"], above=0.99)

# %%
summary = diagnosis.summary_table()
show(summary)

# %% [markdown]
# Across modalities, the miniature sits near chance on the swap test: it behaves like a bag of words. The binding
# that the probes found is in both embeddings, but the alignment does not use it. One linear map on the text side,
# fitted with attribute-swapped hard negatives, lifts the swap test far above chance, on seen combinations and on
# held-out combinations that neither the miniature nor $A$ ever saw. Retrieval does not get worse.
#
# The miniature also has a **modality gap** like CLIP's: the image and caption clouds sit far apart, and $A$
# barely moves them. {doc}`05_modality_gap` measures it, with the
# {term}`binding directions <binding direction>` of the two modalities.

# %% tags=["remove-cell"]
near_chance("the swap test is near chance on held-out combinations", diagnosis.swap.heldout, chance=0.5, width=0.15)
claim("LABCLIP lifts the swap test far above chance (seen)", diagnosis.swap_after.seen, above=0.85)
claim("LABCLIP lifts the swap test far above chance (held-out)", diagnosis.swap_after.heldout, above=0.8)
claim("retrieval does not get worse", diagnosis.retrieval_after.seen - diagnosis.retrieval.seen, above=-0.02)
claim("the clouds sit far apart", diagnosis.gap.seen, above=0.45)
claim("A barely moves the gap", abs(diagnosis.gap_after.seen - diagnosis.gap.seen), below=0.1)

# %% [markdown]
# ## Over eight seeds
#
# One training run could be lucky, and a design tuned on a few seeds can fit those seeds. The miniature was
# designed, and the bands of this book's checks first set, on seeds 0, 1 and 2. `experiments/miniature.py` trains
# it from scratch with those three and with five seeds the design never used (3, 4, 10, 11 and 12), runs this
# diagnosis on each, and writes the table below. It ships with the package, as
# `labclip_utils/records/miniature_seeds.csv`, with the digest of the code that measured it: once that code
# changes, reading the table fails and names the script to run again, `python experiments/miniature.py` (the
# training-time row says how long each seed trained on the machine that measured it; diagnosing it takes about as
# long again). The bands that this book's checks allow are taken from this spread. The last four columns are the
# spread over the eight seeds and this page's run.

# %%
from labclip_utils.records import read_record

seeds = read_record("miniature_seeds.csv", index_col="seed")
columns = {"swap": "swap (held-out)", "image_probe": "image probe (held-out)", "bow_probe": "bag-of-words probe",
           "text_probe_heldout": "text probe (held-out)", "random_text_probe_heldout": "random-init text probe",
           "swap_after_A_seen": "LABCLIP swap (seen)", "swap_after_A_heldout": "LABCLIP swap (held-out)",
           "gap": "centroid gap", "gap_after_A": "centroid gap after A", "binding_cos": "binding-direction cosine",
           "binding_cos_after_A": "binding-direction cosine after A", "train_s": "training time (s)"}
this_run = {"swap": diagnosis.swap.heldout, "image_probe": diagnosis.probes["image emb."].heldout,
            "bow_probe": diagnosis.probes["bag of words"].heldout,
            "text_probe_heldout": diagnosis.probes["text emb."].heldout,
            "random_text_probe_heldout": diagnosis.probes["random-init text"].heldout,
            "swap_after_A_seen": diagnosis.swap_after.seen, "swap_after_A_heldout": diagnosis.swap_after.heldout,
            "gap": diagnosis.gap.seen, "gap_after_A": diagnosis.gap_after.seen,
            "binding_cos": diagnosis.binding_cos.seen, "binding_cos_after_A": diagnosis.binding_cos_after.seen}
spread = seeds[list(columns)].T.rename(index=columns, columns=lambda s: f"seed {s}")
spread["min"], spread["median"], spread["max"] = (seeds[list(columns)].agg(f).rename(columns) for f in
                                                   ("min", "median", "max"))
spread["this page" if profile.is_offline else "this page (other model)"] = [this_run.get(k) for k in columns]
print(f"{len(seeds)} seeds, measured by the code with digest {', '.join(seeds['code_digest'].unique())}")
show(spread)

# %% [markdown]
# Three numbers move most from seed to seed: the swap test (it spans {glue:text}`seeds_swap_range:.2f`), the text
# probe on held-out combinations ({glue:text}`seeds_text_probe_range:.2f`) and the centroid gap
# ({glue:text}`seeds_gap_range:.2f`). The swap test stays near chance (within 0.15 of one half) on
# {glue:text}`seeds_swap_near_chance:.0f` of the eight seeds; the highest, seed {glue:text}`seeds_swap_max_seed:.0f`,
# reaches {glue:text}`seeds_swap_max:.2f`: partly off chance, and still far below what LABCLIP reaches on held-out
# combinations on every seed. The text probe stays far above one half (at least
# {glue:text}`seeds_text_probe_min:.2f`), and the clouds sit far apart on every seed (a gap of at least
# {glue:text}`seeds_gap_min:.2f`). The image probe, the bag-of-words ceiling and LABCLIP on seen combinations barely
# move (each spans less than 0.05).
#
# LABCLIP on held-out combinations is the least stable of LABCLIP's numbers. Over the eight seeds it
# goes from {glue:text}`seeds_labclip_heldout_min:.3f` to {glue:text}`seeds_labclip_heldout_max:.3f` (median
# {glue:text}`seeds_labclip_heldout_median:.3f`), and {glue:text}`seeds_labclip_heldout_below_090:.0f` of the eight
# seeds stay below 0.90. $A$ is fitted on training combinations only, so on unseen combinations it works through
# however each seed's towers happen to embed them, which no stage trained for: across seeds, held-out LABCLIP
# spans {glue:text}`seeds_labclip_heldout_range:.3f`, seen LABCLIP only {glue:text}`seeds_labclip_seen_range:.3f`.
# The design notes below found that held-out LABCLIP is limited by how many combinations $A$'s fit covers (step 9)
# and by the image tower's training (step 7); the miniature was not redesigned for the new seeds. So this book
# claims what every seed shows: LABCLIP lifts held-out combinations far above chance, not that it reaches 0.90 on
# them.

# %% tags=["remove-cell"]
labclip_heldout = seeds["swap_after_A_heldout"]
publish("seeds_labclip_heldout_min", labclip_heldout.min())
publish("seeds_labclip_heldout_max", labclip_heldout.max())
publish("seeds_labclip_heldout_median", labclip_heldout.median())
publish("seeds_labclip_heldout_below_090", (labclip_heldout < 0.90).sum())
ranges = seeds[list(this_run)].max() - seeds[list(this_run)].min()
publish("seeds_labclip_heldout_range", ranges["swap_after_A_heldout"])
publish("seeds_labclip_seen_range", ranges["swap_after_A_seen"])
claim("held-out LABCLIP spreads more across seeds than seen LABCLIP", ranges["swap_after_A_heldout"]
      - ranges["swap_after_A_seen"], above=0.0)
claim("the table holds eight seeds", len(seeds), between=(8, 8))
claim("all eight were measured by the same code", seeds["code_digest"].nunique(), between=(1, 1))
publish("seeds_swap_range", ranges["swap"])
publish("seeds_text_probe_range", ranges["text_probe_heldout"])
publish("seeds_gap_range", ranges["gap"])
publish("seeds_text_probe_min", seeds["text_probe_heldout"].min())
publish("seeds_gap_min", seeds["gap"].min())
publish("seeds_train_minutes", seeds["train_s"].median() / 60)  # the lesson plan's Colab timing (two cores)
moving = ["swap", "text_probe_heldout", "gap"]
claim("the swap test, the text probe and the gap move most across seeds",
      ranges[moving].min() - ranges.drop(moving + ["gap_after_A"]).max(), above=0.0)
claim("the text probe stays far above one half on every seed", seeds["text_probe_heldout"].min(), above=0.7)
claim("the image probe stays far above the bag-of-words ceiling on every seed",
      (seeds["image_probe"] - seeds["bow_probe"]).min(), above=0.3)
claim("the clouds sit far apart on every seed", seeds["gap"].min(), above=0.45)
for key in ("image_probe", "bow_probe", "swap_after_A_seen"):
    claim(f"{columns[key]} barely moves across seeds", ranges[key], below=0.05)
near_chance("the swap test stays near chance on every seed (lowest)", seeds["swap"].min(), chance=0.5, width=0.15)
near_chance_seeds = publish("seeds_swap_near_chance", int(((seeds["swap"] - 0.5).abs() <= 0.15).sum()))
claim("the swap test stays near chance on most of the eight seeds", near_chance_seeds, above=5.5)
publish("seeds_swap_max_seed", int(seeds["swap"].idxmax()))  # the table is indexed by seed
claim("the highest swap test is still far below held-out LABCLIP on every seed (by more than 0.15)",
      labclip_heldout.min() - publish("seeds_swap_max", seeds["swap"].max()), above=0.15)
claim("LABCLIP lifts held-out combinations far above chance on every seed", labclip_heldout.min(), above=0.8)
if profile.is_offline:
    # This page's run is seed 0 trained again in another process: its numbers may differ from the table's by
    # run-to-run noise (thread scheduling, float summation order), which we allow as a fixed ±0.02, not more.
    for key, value in nonempty("this page's numbers", list(this_run.items())):
        within_seeds(f"this run's {columns[key]} lies in the eight seeds' range", value, key, tolerance=0.02)

# %% [markdown]
# ## How the miniature was built
#
# The miniature had to show five findings at once: swap near chance, probes far above their controls, LABCLIP
# working on held-out combinations, a CLIP-like gap, and binding directions that agree more after $A$. The table
# lists the variants we tried on the way, each trained from scratch on seed 0 and measured with this book's code
# (`experiments/miniature_design.py` writes it to `labclip_utils/records/miniature_design.csv`; the `arguments`
# column is what `experiments/miniature.py --seeds 0` needs to measure one row again, and a build whose record was
# measured by other code fails). Step 5 is the book's miniature: its row matches seed 0 of the seed table above up
# to run-to-run noise.

# %%
design = read_record("miniature_design.csv", index_col="step")
print(f"measured by the code with digest {', '.join(design['code_digest'].unique())}")
show(design.drop(columns="code_digest"))

# %% [markdown]
# What we learned from it:
#
# - **Centring** each tower's output before its head removes the gap by construction (steps 1, 2, 4). CLIP's
#   towers are not centred, and with uncentred towers and CLIP's fixed final temperature the gap appears (steps 3,
#   5).
# - **Mean text pooling** instead of the end-of-text token (steps 1 → 2) raised the text probe
#   ({glue:text}`design_text_probe_1:.3f` → {glue:text}`design_text_probe_2:.3f`) and held-out LABCLIP
#   ({glue:text}`design_labclip_1:.3f` → {glue:text}`design_labclip_2:.3f`). But with the first image tower, whose
#   every output sees the whole scene, the swap test then left chance ({glue:text}`design_swap_2:.2f` centred,
#   {glue:text}`design_swap_3:.2f` uncentred): that miniature binds across modalities by itself, which is not the
#   behaviour this book is about.
# - A **local image tower**, whose embedding is close to a sum of per-object features, brings the swap test back
#   to chance ({glue:text}`design_swap_4:.2f` and {glue:text}`design_swap_5:.2f`), and that is why the book uses
#   it. It costs held-out LABCLIP ({glue:text}`design_labclip_3:.3f` → {glue:text}`design_labclip_5:.3f`,
#   uncentred). Uncentring it barely moves the image probe but lowers the text probe (steps 4 → 5,
#   {glue:text}`design_text_probe_4:.3f` → {glue:text}`design_text_probe_5:.3f`): the chosen architecture pays for
#   its gap with a lower text probe on this seed; the seed table above shows how far the text probe moves from seed
#   to seed anyway.
# - **Longer text training** starts to bind across modalities by itself (swap {glue:text}`design_swap_6:.2f` in
#   step 6): the miniature stops being a bag of words, so that is not the direction to go. **Longer image
#   training** raises held-out LABCLIP ({glue:text}`design_labclip_7:.3f`) and the image probe, for half again the
#   training time ({glue:text}`design_train_7:.0f` s against {glue:text}`design_train_5:.0f` s); the book keeps the
#   shorter training so that a laptop trains the miniature in minutes. An extra **parsing objective** for the text
#   tower (step 8) leaves the text probe where it was and pushes the swap test below chance
#   ({glue:text}`design_swap_8:.2f`).
# - Held-out LABCLIP is limited by **coverage**: fitted on a third of the evaluation scenes (step 9), $A$ scores
#   {glue:text}`design_labclip_9:.3f` on held-out combinations, against {glue:text}`design_labclip_5:.3f` on all of
#   them.

# %% tags=["remove-cell"]
row = design.loc
for step in (1, 2, 3, 4, 5, 7, 9):
    publish(f"design_labclip_{step}", row[step, "LABCLIP swap (held-out)"])
for step in (1, 2, 4, 5):
    publish(f"design_text_probe_{step}", row[step, "text probe (held-out)"])
for step in (2, 3, 4, 5, 6, 8):
    publish(f"design_swap_{step}", row[step, "swap (held-out)"])
for step in (5, 7):
    publish(f"design_train_{step}", row[step, "training (s)"])
for step in (1, 2, 4):
    claim(f"centring removes the gap (step {step})", row[step, "centroid gap"], below=0.1)
for step in (3, 5):
    claim(f"uncentred towers with a fixed temperature show a gap (step {step})", row[step, "centroid gap"], above=0.45)
rises_by("mean pooling raised the text probe", row[1, "text probe (held-out)"], row[2, "text probe (held-out)"],
         at_least=0.05)
rises_by("... and held-out LABCLIP", row[1, "LABCLIP swap (held-out)"], row[2, "LABCLIP swap (held-out)"],
         at_least=0.1)
for step in (2, 3):
    claim(f"with the first image tower the swap test left chance (step {step})", row[step, "swap (held-out)"],
          above=0.55)
for step in (4, 5):
    near_chance(f"the local image tower brings the swap test back to chance (step {step})",
                row[step, "swap (held-out)"], chance=0.5, width=0.05)
falls_by("the local tower costs held-out LABCLIP (steps 3 and 5)", row[3, "LABCLIP swap (held-out)"],
         row[5, "LABCLIP swap (held-out)"], at_least=0.03)
claim("uncentring the local tower barely moves the image probe",
      abs(row[5, "image probe (held-out)"] - row[4, "image probe (held-out)"]), below=0.02)
falls_by("uncentring lowered the text probe with the local tower", row[4, "text probe (held-out)"],
         row[5, "text probe (held-out)"], at_least=0.05)
claim("longer text training lifts the swap test off chance (step 6)", row[6, "swap (held-out)"], above=0.6)
rises_by("longer image training raises held-out LABCLIP", row[5, "LABCLIP swap (held-out)"],
         row[7, "LABCLIP swap (held-out)"], at_least=0.03)
rises_by("... and the image probe", row[5, "image probe (held-out)"], row[7, "image probe (held-out)"],
         at_least=0.02)
claim("... for half again the training time", row[7, "training (s)"] / row[5, "training (s)"], between=(1.3, 1.8))
claim("the parsing objective leaves the text probe where it was (within 0.05)",
      abs(row[8, "text probe (held-out)"] - row[5, "text probe (held-out)"]), below=0.05)
claim("... and pushes the swap test below chance", row[8, "swap (held-out)"], below=0.47)
falls_by("fitted on a third of the scenes, held-out LABCLIP falls (coverage)", row[5, "LABCLIP swap (held-out)"],
         row[9, "LABCLIP swap (held-out)"], at_least=0.05)
for column, seed_column in {"swap (held-out)": "swap", "text probe (held-out)": "text_probe_heldout",
                            "centroid gap": "gap", "LABCLIP swap (held-out)": "swap_after_A_heldout"}.items():
    claim(f"step 5 matches seed 0 of the seed table up to run-to-run noise ({column})",
          abs(row[5, column] - seeds.loc[0, seed_column]), below=0.02)

# %% [markdown]
# ## Next to the paper
#
# The paper's numbers below were measured on real CLIP models and the real CLEVR renders; the `source` column says
# where each is quoted from, and {doc}`../book/results` explains each source. The miniature is not expected to
# match them digit for digit. It is expected to show the same *pattern*: unimodal probes far above the bag-of-words
# ceiling, cross-modal swap near chance, and LABCLIP well above it.

# %%
show(diagnosis.beside_paper().rename(columns={"this book": f"this book, {profile.label('synthetic')}"}))

# %% [markdown]
# ## Why not just train a tiny CLIP end to end?
#
# The miniature keeps swap partners out of its alignment batches, as web data mostly does. What if they were
# allowed in, so that each batch held hard negatives? The cell below re-trains only the two heads for different
# numbers of steps, with and without in-batch swap partners, and runs the swap test each time. The miniature
# itself is not changed.

# %%
from labclip_utils.book.plots import plot_sweep
from labclip_utils.models.miniature_sweep import alignment_sweep

if profile.is_offline:
    sweep = alignment_sweep(encoder, {"held-out": scenes.heldout(), "seen": scenes.seen},
                            steps=(100, 300, 1000))
    fig = plot_sweep(sweep)
    curve = sweep.pivot_table(index=["scenes", "head steps"], columns="batches", values="swap accuracy")
    own, last = encoder.config.head_steps, sweep["head steps"].max()
    held = curve.loc["held-out"]
    print(f"Held-out swap test without swap partners: {held.loc[own, 'no swap partners']:.3f} after {own} head "
          f"steps (the miniature's own), {held.loc[last, 'no swap partners']:.3f} after {last}; with swap partners "
          f"allowed: {held.loc[own, 'swap partners allowed']:.3f} and {held.loc[last, 'swap partners allowed']:.3f}.")

# %% [markdown]
# With in-batch hard negatives, the same heads on the same frozen towers learn to bind: the binding was available
# to them all along. Without swap partners the swap test does not stay at chance for ever. At the miniature's own
# number of head steps it is near chance; trained longer, it creeps up (the line under the figure gives the
# numbers). At every number of steps, though, the batches with swap partners bind more, and from 300 steps on by
# more than 0.1 on held-out combinations. So CLIP's bag-of-words behaviour is a matter of *what the alignment is
# trained on* (and, more weakly, for how long), not of what the encoders can represent. {doc}`09_beyond` takes
# this further with a tiny CLIP trained end to end.

# %% tags=["remove-cell"]
if profile.is_offline:
    near_chance("without swap partners, at the miniature's own head steps, the held-out swap test is near chance",
                held.loc[own, "no swap partners"], chance=0.5, width=0.15)
    rises_by("without swap partners, longer head training lifts the held-out swap test",
             held.loc[own, "no swap partners"], held.loc[last, "no swap partners"], at_least=0.1)
    for steps in nonempty("the sweep's runs of 300 head steps or more", [n for n in held.index if n >= 300]):
        claim(f"in-batch hard negatives bind more by more than 0.1 held-out, from 300 steps on ({steps} steps)",
              held.loc[steps, "swap partners allowed"] - held.loc[steps, "no swap partners"], above=0.1)
    for (name, steps), row in nonempty("the sweep's rows", list(curve.iterrows())):
        claim(f"with swap partners the heads bind more ({name}, {steps} steps)",
              row["swap partners allowed"] - row["no swap partners"], above=0.0)

# %% tags=["remove-cell"]
# Exercises 2 and 3: their answers, computed here (or read from the design record) so that the solutions quote them.
from labclip_utils.metrics import swap_accuracy
from labclip_utils.store import embed_scenes

random_test = embed_scenes(control, scenes.pool, progress=False).select("test")  # cached by the diagnosis
random_swap = publish("ex_random_init_swap", swap_accuracy(random_test.images, random_test.captions,
                                                            random_test.negatives))
probes = {label: value.heldout for label, value in diagnosis.probes.items()}  # held-out combinations
publish("ex_random_init_text_probe", probes["random-init text"])
publish("ex_random_init_image_probe", probes["random-init image"])
publish("ex_trained_text_probe", probes["text emb."])
publish("ex_bow_ceiling", probes["bag of words"])
claim("with a random-init encoder the text probe stays high (as high as the trained one's, within 0.05)",
      probes["random-init text"] - probes["text emb."], above=-0.05)
claim("the random-init image probe drops below the bag-of-words ceiling", probes["random-init image"],
      below=probes["bag of words"])
near_chance("with a random-init encoder the swap test stays at chance", random_swap, chance=0.5, width=0.05)
steps = design.loc  # the design record (the sweep above reuses the name `row`)
for step, key in ((4, "centred"), (5, "uncentred")):
    publish(f"ex_{key}_gap", steps[step, "centroid gap"])
    publish(f"ex_{key}_swap", steps[step, "swap (held-out)"])
    publish(f"ex_{key}_image_probe", steps[step, "image probe (held-out)"])
falls_by("centring nearly removes the gap (design steps 5 and 4)", steps[5, "centroid gap"],
         steps[4, "centroid gap"], at_least=0.45)
for step in (4, 5):
    near_chance(f"the swap test stays near chance centred or not (step {step})", steps[step, "swap (held-out)"],
                chance=0.5, width=0.05)
claim("the image probe barely moves between steps 4 and 5",
      abs(steps[5, "image probe (held-out)"] - steps[4, "image probe (held-out)"]), below=0.02)
falls_by("but the text probe does move (steps 4 and 5)", steps[4, "text probe (held-out)"],
         steps[5, "text probe (held-out)"], at_least=0.05)

# %% [markdown]
# ## Exercises
#
# 1. *Take-home* (several minutes): train the heads for 3000 steps without swap partners
#    (`alignment_sweep(encoder, {"held-out": scenes.heldout()}, steps=(3000,))`). Where does the swap test end up?
#    What does that say about long CLIP training runs?
# 2. Re-run the diagnosis with the random-init `control` above (`profile.load_encoder("synthetic",
#    random_init=True)`) as the *encoder*. Which numbers stay high, and why?
# 3. *Take-home* (a new miniature trains for minutes): train a centred variant,
#    `load_miniature("seed0", config=MiniatureConfig(centre=True, logit_scale=None))` (imports:
#    `from labclip_utils.models import load_miniature` and `from labclip_utils.models.miniature import
#    MiniatureConfig`), and measure its gap with `diagnose`. Which other numbers change?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. The sweep above answers it up to 1000 steps (the line under its figure gives the numbers); 3000 steps is the
#    same experiment run longer. Without swap partners the held-out swap test creeps up with training: the
#    positive term of the contrastive loss rewards any shared direction, binding directions included. But at
#    every number of steps the heads trained with swap partners bind more. A long CLIP run may thus bind a little
#    by itself, while hard negatives teach binding directly.
# 2. The text probe stays high ({glue:text}`ex_random_init_text_probe:.3f` with random weights, against
#    {glue:text}`ex_trained_text_probe:.3f` trained): a random text transformer keeps word order, and word order
#    is the binding. The image probe drops to {glue:text}`ex_random_init_image_probe:.3f`, below the bag-of-words
#    ceiling ({glue:text}`ex_bow_ceiling:.3f`), and the swap test stays at chance
#    ({glue:text}`ex_random_init_swap:.3f` on held-out combinations).
# 3. The design table above already holds this run on one seed: step 4 is the centred variant, step 5 the
#    same towers with the miniature's uncentred heads. Centring nearly removes the gap
#    ({glue:text}`ex_centred_gap:.3f` against {glue:text}`ex_uncentred_gap:.3f`), and the swap test stays near
#    chance either way ({glue:text}`ex_centred_swap:.3f` and {glue:text}`ex_uncentred_swap:.3f`). The image probe
#    barely moves ({glue:text}`ex_centred_image_probe:.3f` and {glue:text}`ex_uncentred_image_probe:.3f`), but
#    the text probe does ({glue:text}`design_text_probe_4:.3f` centred, {glue:text}`design_text_probe_5:.3f`
#    not): the gap and the binding failure are different problems, but centring is not free.
# ```
