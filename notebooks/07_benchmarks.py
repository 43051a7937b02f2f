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
# # Does it hold up on real benchmarks?
#
# The paper ends with tables on benchmarks built from real photographs: ARO's VG-Relation, VG-Attribution,
# COCO-Order and Flickr30k-Order {cite}`yuksekgonul2023aro`, SugarCrepe {cite}`hsieh2023sugarcrepe`, and COCO
# retrieval {cite}`lin2014coco`, next to the synthetic CLEVR {cite}`johnson2017clevr`, PUG:SPAR
# {cite}`bordes2023pug` and PUG:SPARE sets. It fits one $A$ per synthetic dataset, on that dataset's training
# combinations, and one $A$ on COCO captions whose nouns and adjectives are shuffled (NegCLIP's hard negatives) for
# all the real benchmarks.
#
# This chapter runs every benchmark with one call. In the **paper** profile it downloads the real datasets
# (checksummed, resumable), fits the COCO $A$, and uses the paper's backbones: ViT-L/14 for CLEVR and PUG, ViT-B/32
# for the rest. In the **offline** profile it writes small *analogues* of every benchmark in its real file format
# from generated scenes, so the same loaders, metrics and runner execute; only the pictures and words are simpler,
# and every row says so. {doc}`10_protocol` lists every choice, the paper's and ours.
#
# In class, set `LABCLIP_SIZE=class` with the paper profile ({doc}`11_setup` gives the downloads and the time on
# Colab's free T4 of every chapter at both sizes). The chapter then runs COCO retrieval, COCO-Order and SugarCrepe on
# fixed subsets whose photographs are fetched one by one, ARO in full, and the $A$ the authors released for ViT-B/32
# instead of fitting one on 113,287 COCO images; the synthetic swap tests, whose renders come only as large archives,
# are left to {doc}`02_miniature` through {doc}`06_labclip` (`labclip_utils.benchmarks.subsets` says which subset,
# and why each archive is or is not fetched). Every table then says "class subset".

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %%
import pandas as pd

from labclip_utils.benchmarks import BENCHMARKS
from labclip_utils.book.claims import claim, falls_by, near_chance, nonempty, rises_by
from labclip_utils.book.plots import set_book_style
from labclip_utils.book.tables import show

set_book_style()
suffix = " (analogue)" if profile.is_offline else " (class subset)" if profile.is_class else ""
show(pd.DataFrame([{"benchmark": s.name, "what it is": s.title + suffix, "dataset folder": s.dataset,
                    "experiment": s.experiment, "reference": s.reference} for s in BENCHMARKS.values()]
                  ).set_index("benchmark"))

# %% [markdown]
# ## The models and their matrices
#
# Offline, one miniature serves everything, and the real-benchmark analogues use the $A$ of {doc}`06_labclip`,
# fitted on CLEVR-like scenes (the analogues speak the miniature's words, so a COCO $A$ does not exist offline). In
# the paper profile, $A$ is fitted as in the paper's COCO script: Karpathy training images, the first five captions
# of each, their noun/adjective shuffles, Adam with learning rate $10^{-3}$, batch 1024, 10 epochs, the last kept.

# %%
from labclip_utils.benchmarks.coco import coco_labclip
from labclip_utils.benchmarks.downloads import fetch_dataset
from labclip_utils.benchmarks.offline import write_offline_benchmarks
from labclip_utils.benchmarks.perturbations import SpacyTagger
from labclip_utils.benchmarks.subsets import CLASS_ITEMS, RELEASED_A_MODEL, class_data, released_coco_map
from labclip_utils.labclip import LabclipConfig, fit_on_scenes
from labclip_utils.scenes import evaluation_scenes

encoders = {}
if not profile.is_class:  # at class size the synthetic benchmarks do not run (see the introduction)
    encoders["synthetic"] = profile.load_encoder("synthetic")
encoders["real"] = profile.load_encoder("real")
if profile.is_offline:
    scenes = evaluation_scenes(image_size=profile.image_size)
    real_map, real_a = fit_on_scenes(encoders["real"], scenes, progress=False).map, "CLEVR-like scenes"
    data_root = write_offline_benchmarks(profile.cache_dir / "benchmarks", image_size=profile.image_size)
else:  # at class size: the subsets (annotation files, then only their images), else the whole datasets
    data_root = class_data(profile.data_dir) if profile.is_class else profile.data_dir
    real_a = "coco"
    if profile.is_class and profile.model == RELEASED_A_MODEL:
        real_map = released_coco_map(profile.data_dir)
        print(f"class size: the authors' released COCO A for {RELEASED_A_MODEL}; fixed subsets of at most "
              f"{CLASS_ITEMS['coco_test_images']:,} COCO test images and {CLASS_ITEMS['sugarcrepe_items']:,} "
              "SugarCrepe items (the coverage table below counts them), ARO in full")
    else:
        if profile.is_class:
            print(f"NOTE: the authors released a COCO A only for {RELEASED_A_MODEL}; for {profile.model} it is "
                  "fitted here on COCO's training split, which downloads about 19 GB: beyond a class's budget")
        coco = fetch_dataset("coco_train", profile.data_dir / "coco")
        config = LabclipConfig.coco()
        config = LabclipConfig(lr=config.lr, batch_size=config.batch_size, epochs=profile.scaled(config.epochs))
        real_map = coco_labclip(encoders["real"], coco, SpacyTagger(data_root=profile.data_dir), config,
                                limit=None if profile.fraction >= 1 else profile.scaled(113_287, minimum=64)).map
data_kind = ("offline analogues" if profile.is_offline else "class subsets" if profile.is_class
             else "downloaded datasets")
print(f"data: {data_kind} ({data_root.name}); the real benchmarks' A was fitted on {real_a}")

# %% [markdown]
# ## Every benchmark, CLIP and LABCLIP
#
# `run_suite` loads each benchmark through the registry, encodes every unique image and caption once (cached),
# scores it with and without $A$, and returns a tidy table. For CLEVR, PUG:SPAR and PUG:SPARE it first fits an $A$
# on that dataset's training split (the paper's recipe: batch 128 on CLEVR, 512 on PUG). The coverage table says how
# many items ran. Offline, captions with words the miniature has never seen (relations such as "to the left of")
# are left out and counted.

# %%
from labclip_utils.benchmarks.subsets import CLASS_BENCHMARKS
from labclip_utils.benchmarks.suite import headline_table, run_suite

results, coverage = run_suite(encoders, {"CLIP": None, "LABCLIP": real_map}, data_root, profile_name=profile.name,
                              names=CLASS_BENCHMARKS if profile.is_class else None, real_a=real_a,
                              download=not profile.is_offline and not profile.is_class, fraction=profile.fraction)
show(coverage.assign(title=coverage["title"] + suffix))

# %%
from labclip_utils.book.plots import plot_benchmarks
from labclip_utils.book.publish import publish_headlines

headline = headline_table(results)
publish_headlines(headline, coverage)  # the landing and results pages paste these
if profile.is_offline:  # the paper's numbers beside the analogues are real CLIP's: say so in the rows and columns
    with_paper = headline["paper: CLIP"].notna()
    headline.index = [f"{label} (analogue{'; paper: real CLIP ViT-L/14' if paper else ''})"
                      for label, paper in zip(headline.index, with_paper, strict=True)]
    headline = headline.rename(columns=lambda c: c.replace("paper: ", "paper, real CLIP ViT-L/14: "))
title = "Benchmark analogues: the miniature, CLIP and LABCLIP" if profile.is_offline else "Benchmarks"
fig = plot_benchmarks(headline, title=title)
show(headline)

# %% [markdown]
# The `paper` columns are the paper's values, quoted from an AI-written summary of the paper (source tag
# `NOTE` in `labclip_utils.paper`; the results page describes each source), not measured here. They appear only in rows
# measured under the same experiment: the synthetic swap tests, each with an $A$ fitted on its own dataset. Offline,
# "the same experiment" means the same procedure, not the same model or data: the paper's numbers come from real CLIP on
# real renders (ViT-L/14, the default of the authors' scripts; the summaries we quote do not name the backbone), ours
# from the miniature on the analogues, and the columns and rows say so. They are shown to compare *directions* (LABCLIP
# far above CLIP, or not), never values. The real benchmarks' paper values need an $A$ fitted on COCO, which only the
# paper profile has, so offline those cells stay empty.
#
# Offline, compare directions, not values. The analogues are the miniature on look-alike data: a benchmark whose
# negatives keep the bag of words (the swap tests, VG-Attribution, SugarCrepe's swaps) is where a bag-of-words model
# fails and where $A$ should help most.

# %%
gain = (headline["LABCLIP"] - headline["CLIP"]).astype(float).sort_values()
print("LABCLIP minus CLIP, per benchmark:")
print(gain.round(3).to_string())
print(f"\nLABCLIP is ahead on {int((gain > 0).sum())} of {len(gain)} headline numbers; "
      f"largest gain {gain.max():+.3f} ({gain.idxmax()}), largest loss {gain.min():+.3f} ({gain.idxmin()}).")

# %% tags=["remove-cell"]
swaps = [label for label in headline.index
         if ("swap test" in label and "SPAR " not in label) or "VG-Attribution" in label or "SugarCrepe swap" in label]
for label in nonempty("the headlines whose negatives keep the bag of words", swaps):
    claim(f"A helps most where the negatives keep the bag of words ({label})", gain[label], above=0.1)
others = [label for label in headline.index if "replace" in label or "add" in label]
for label in nonempty("the replace and add headlines", others):
    claim(f"on the others A changes little ({label})", abs(gain[label]), below=0.1)
subsets = results[(results["benchmark"] == "sugarcrepe") & (results["metric"] == "accuracy")].pivot_table(
    index="subset", columns="model", values="value")
if profile.is_offline or {"add_obj", "add_att"} <= set(subsets.index):  # a small rehearsal may sample neither
    add_moves = subsets.loc[["add_obj", "add_att"], "LABCLIP"] - subsets.loc[["add_obj", "add_att"], "CLIP"]
    claim("add's average hides a clear rise on added objects", add_moves["add_obj"], above=0.1)
    claim("... and a fall on added attributes", add_moves["add_att"], below=0.0)
retrieval = nonempty("the COCO retrieval headline", [label for label in headline.index if "R@1" in label])[0]
falls_by("offline, A costs text→image retrieval on the COCO analogue", headline.loc[retrieval, "CLIP"],
         headline.loc[retrieval, "LABCLIP"], at_least=0.05)

# %% [markdown]
# So, does it hold up? On CLEVR, SPARE, VG-Attribution and SugarCrepe's swaps, where the negatives keep the bag of
# words, LABCLIP is well ahead of CLIP, as in the paper; on SugarCrepe's replace and add its averages change little.
# The add average hides two moves that partly cancel: with $A$, added objects rise clearly and added attributes fall
# (the rows `add_obj` and `add_att` of the subset table below). SPAR is the exception among the swap tests, and the
# next section shows why.
#
# Retrieval is the other exception, and it goes the wrong way. Offline, text→image R@1 on the COCO analogue
# *falls* with $A$, from {glue:text}`bench_coco_text_image_r_1_clip:.3f` to
# {glue:text}`bench_coco_text_image_r_1_labclip:.3f`, where the paper reports a rise on real COCO (from
# {glue:text}`paper_coco_text_image_r_1_clip:.2f` to {glue:text}`paper_coco_text_image_r_1_labclip:.2f`; the
# paper's, real CLIP ViT-B/32 with an $A$ fitted on COCO). The two are not the same experiment. Offline, $A$ is not
# a COCO $A$: it was fitted on two-object CLEVR-like scenes to tell swapped captions apart, and it reshapes the text
# space for that task, while the analogue's captions name three objects and its candidates differ in whole
# combinations, not in bindings. What this shows is that an $A$ fitted for one kind of caption can cost retrieval on
# another, not whether the paper's COCO $A$ helps COCO retrieval; the paper profile measures that.
#
# ## Two CLEVR numbers
#
# The CLEVR swap test appears twice in this book, with two different LABCLIP numbers: in {doc}`06_labclip`, on the
# book's CLEVR-like evaluation scenes, and here, on a CLEVR dataset read from CLEVR's file format (offline: the
# analogue; in the paper profile: real CLEVR). Both follow the paper's procedure, an $A$ fitted on the dataset's own
# training combinations and tested on held-out ones, but the data differ, and above all the number of training
# scenes. The cell fits each $A$ (both cached) and scores both on the same test items of this chapter's CLEVR.

# %%
from labclip_utils.benchmarks.scenes import binding_task, load_binding_scenes
from labclip_utils.benchmarks.suite import synthetic_config
from labclip_utils.evaluation import evaluate, result
from labclip_utils.labclip import fit_on_dataset

if profile.is_class:
    print("class size: not run (CLEVR's renders are not fetched at class size)")
else:
    clevr = load_binding_scenes(data_root / BENCHMARKS["clevr"].dataset, "paper" if not profile.is_offline else
                                "compositional")
    book_scenes = evaluation_scenes(seed=0, image_size=profile.image_size, fraction=profile.fraction)
    fits = {"A fitted on this CLEVR": fit_on_dataset(encoders["synthetic"], clevr, synthetic_config("clevr"),
                                                     progress=False),
            "A of chapter 06 (the book's scenes)": fit_on_scenes(encoders["synthetic"], book_scenes, progress=False)}
    two_clevr = evaluate(encoders["synthetic"], binding_task(clevr, "clevr"),
                         {"CLIP": None} | {name: fit.map for name, fit in fits.items()}, progress=False)
    two_clevr = pd.DataFrame({"training scenes": {"CLIP": 0, **{name: len(train_rows) for name, train_rows in
                                                                (("A fitted on this CLEVR", clevr.select("train")),
                                                                 ("A of chapter 06 (the book's scenes)",
                                                                  book_scenes.pool.select("train")))}},
                              "swap test on this CLEVR's test items": {model: result(two_clevr, model)
                                                                       for model in ["CLIP", *fits]}})
    show(two_clevr.rename_axis("model"))

# %% [markdown]
# The $A$ of {doc}`06_labclip` was fitted on {glue:text}`clevr_book_train:,.0f` training scenes, this chapter's on
# {glue:text}`clevr_bench_train:,.0f`. On the same test items, the $A$ fitted on more scenes scores higher, by
# {glue:text}`clevr_more_scenes_gain:.3f`: held-out LABCLIP is limited by how many combinations its fit covers,
# as the design notes of {doc}`02_miniature` found. That, and not a difference in method, is why the two chapters
# report different CLEVR numbers.

# %% tags=["remove-cell"]
from labclip_utils.book.publish import publish

if not profile.is_class:
    column = "swap test on this CLEVR's test items"
    publish("clevr_book_train", two_clevr.loc["A of chapter 06 (the book's scenes)", "training scenes"])
    publish("clevr_bench_train", two_clevr.loc["A fitted on this CLEVR", "training scenes"])
    gain_more = publish("clevr_more_scenes_gain", two_clevr.loc["A of chapter 06 (the book's scenes)", column]
                        - two_clevr.loc["A fitted on this CLEVR", column])
    claim("the A fitted on more scenes scores higher on the same test items", gain_more, above=0.02)

# %% [markdown]
# ## SPAR, SPARE and the split
#
# The paper reports LABCLIP at {glue:text}`paper_pug_spar_swap_test_labclip:.2f` on SPAR (the paper's, real CLIP
# ViT-L/14). Its SPAR split (reproduced exactly by `split_kind="paper"`) draws test
# images from the same combinations as training; the book's compositional split holds whole combinations out. SPAR
# has few combinations, because the caption's first animal always takes one of two textures, so a compositional
# split leaves $A$ little to learn from. Here are both splits, each with its own $A$:

# %%
if profile.is_class:
    print("class size: not run (PUG's renders are not fetched at class size)")
else:
    splits = {}
    for name in ("pug_spar", "pug_spare"):
        folder = data_root / BENCHMARKS[name].dataset
        for kind in ("paper", "compositional"):
            ds = load_binding_scenes(folder, split_kind=kind)
            fit = fit_on_dataset(encoders["synthetic"], ds, synthetic_config(name), progress=False)
            table = evaluate(encoders["synthetic"], binding_task(ds, name), {"CLIP": None, "LABCLIP": fit.map},
                             progress=False)
            splits[(BENCHMARKS[name].title + suffix, f"{kind} split")] = {"CLIP": result(table, "CLIP"),
                                                                 "LABCLIP": result(table, "LABCLIP"),
                                                                 "test items": len(binding_task(ds, name))}
    splits = pd.DataFrame(splits).T
    show(splits)

# %% [markdown]
# On the paper's split LABCLIP nearly solves SPAR, as in the paper; on held-out combinations it gains much less.
# SPARE, with positions and textures varied independently, depends less on the split. A SPAR number says how well
# $A$ fits the combinations it was trained on more than whether it binds: read it with SPARE beside it.
#
# Whether all this holds up on the real photographs is the paper profile's question: run this chapter with
# `PROFILE = "paper"` to measure it.

# %% tags=["remove-cell"]
if not profile.is_class:
    gain = splits["LABCLIP"] - splits["CLIP"]
    spar, spare = (BENCHMARKS[name].title + suffix for name in ("pug_spar", "pug_spare"))
    claim("on the paper's split LABCLIP nearly solves SPAR", splits.loc[(spar, "paper split"), "LABCLIP"], above=0.9)
    claim("on held-out combinations it gains much less (less than half the paper split's gain)",
          gain[(spar, "compositional split")] / gain[(spar, "paper split")], below=0.5)
    claim("SPARE depends less on the split than SPAR (LABCLIP's change between the splits)",
          abs(splits.loc[(spare, "paper split"), "LABCLIP"] - splits.loc[(spare, "compositional split"), "LABCLIP"])
          - abs(splits.loc[(spar, "paper split"), "LABCLIP"] - splits.loc[(spar, "compositional split"), "LABCLIP"]),
          below=0.0)

# %% [markdown] tags=["method"]
# ## Definitions matter
#
# **ARO** reports the *macro* average: accuracy per relation (VG-R) or per attribute pair (VG-A, pairs with at
# least 25 items), then the mean. The *micro* average weights every item equally. LABCLIP's notebook keeps all of
# VG-R's relations; ARO's own replication drops the *symmetric* ones ("next to", "near"...), where swapping the two
# objects gives a caption that is also true. Both VG-R averages are reported, labelled.
#
# **SugarCrepe** has seven subsets. Its paper averages families weighted by item counts; LABCLIP's notebook takes
# the plain mean. Both are here.
#
# **CLEVR**: the paper's code scores plain CLIP with un-normalised text embeddings (a raw dot product) and counts ties
# as correct; the "accuracy (cosine)" row is the same test with cosines.

# %%
definitions = results[results["metric"].str.contains("macro|micro|weighted|unweighted|cosine")]
show(definitions.assign(benchmark=definitions["benchmark"] + suffix).pivot_table(
    index=["benchmark", "subset", "metric"], columns="model", values="value"))

# %%
from labclip_utils.paper import paper_table

sugar = results[(results["benchmark"] == "sugarcrepe") & (results["metric"] == "accuracy")]
sugar = sugar.pivot_table(index="subset", columns="model", values="value")
if not profile.is_offline:  # SugarCrepe's own table is for real CLIP on the real data
    published = paper_table(setting_contains="SugarCrepe ", metric_contains="accuracy")
    sugar["SugarCrepe paper: ViT-B-32"] = published.set_index(published["setting"].str.split().str[-1])["paper value"]
show(sugar.rename_axis(f"SugarCrepe{suffix} subset"))

# %% [markdown]
# ## An order test, item by item
#
# COCO-Order and Flickr30k-Order ask the model to prefer a caption over four scramblings of its own words. A
# bag-of-words model cannot tell them apart. The scramblings are ARO's functions, draw for draw, generated once with a
# fixed seed and stored next to the data, so every run scores the same items (ARO draws them afresh on each run).
# Here is one item:

# %%
from labclip_utils.benchmarks import load_benchmark
from labclip_utils.evaluation import choice_scores, encode_task

order = load_benchmark("coco_order", data_root, profile_name=profile.name)
emb = encode_task(encoders["real"], order, progress=False)
scores = {model: choice_scores(emb, order.head(1), a)[0] for model, a in {"CLIP": None, "LABCLIP": real_map}.items()}
show(pd.DataFrame({"option": order.options[0], **scores},
                  index=pd.Index(["original", "nouns/adjectives shuffled", "other words shuffled", "within trigrams",
                                  "trigrams shuffled"], name="caption")))

# %% [markdown]
# Offline, the miniature picks the original caption hardly more often than chance, one in five:
# {glue:text}`bench_aro_coco_order_clip:.3f` on COCO-Order. Its text encoder has never seen ungrammatical captions,
# and a scrambling that moves a colour next to another shape can match the image's colours as well as the original
# does. This is a property of the miniature, not of CLIP. LABCLIP's $A$, fitted to tell bindings apart, lifts it to
# {glue:text}`bench_aro_coco_order_labclip:.3f`.

# %% tags=["remove-cell"]
order = nonempty("the COCO-Order headline", [label for label in headline.index if "COCO-Order" in label])[0]
headline_order = headline.loc[order, ["CLIP", "LABCLIP"]].astype(float)
near_chance("offline, the miniature picks the original caption about as often as chance (COCO-Order)",
            headline.loc[order, "CLIP"], chance=0.2, width=0.1)
rises_by("LABCLIP lifts the order test", headline.loc[order, "CLIP"], headline.loc[order, "LABCLIP"], at_least=0.1)

# %% [markdown]
# ## Saving results
#
# `save_results` writes CSV or JSON atomically and refuses to overwrite an earlier result unless asked to, so a
# comparison run never silently replaces the one it is compared with. Every row records the precision the encoder
# ran in.

# %%
import tempfile
from pathlib import Path

from labclip_utils.evaluation import save_results

out = Path(tempfile.mkdtemp()) / "benchmarks.csv"
save_results(results, out)
try:
    save_results(results, out)
except FileExistsError:
    print("a second save to the same file is refused: an earlier result is there")
print(f"{len(results)} rows, columns {list(results.columns)}")

# %% [markdown]
# ## Relations need words the miniature does not have
#
# VG-Relation and SugarCrepe's `replace_rel` describe relations ("the red cube is to the left of the blue sphere").
# The miniature cannot read them, so offline they run on the same architecture as the paper's CLIP with **random**
# weights: this checks the code path and gives the chance-level control, nothing more. In the paper profile they
# ran above with the real model.

# %%
from labclip_utils.evaluation import evaluate

if profile.is_offline:
    from IPython.display import display

    from labclip_utils.session import random_encoder

    control = random_encoder("ViT-B-32")  # random init, seeded: no download
    relation = load_benchmark("vg_relation", data_root, profile_name=profile.name).head(24)
    display(show(evaluate(control, relation, progress=False)[["metric", "value", "items", "definition"]]))

# %% tags=["remove-cell"]
# The exercises' answers, computed here so that the solutions below quote them.
from labclip_utils.benchmarks import default_tagger, load_benchmark
from labclip_utils.benchmarks.aro import load_order
from labclip_utils.benchmarks.suite import restrict_to_vocabulary, subsample
from labclip_utils.book.publish import publish
from labclip_utils.evaluation import choice_scores, encode_task
from labclip_utils.metrics import choice_credit, macro_accuracy


def readable_task(task):
    """The task as run_suite runs it: the items the encoder can read, subsampled to the profile's scale."""
    return subsample(restrict_to_vocabulary(encoders["real"], task)[0], profile.fraction)


# Exercise 1: VG-Attribution's macro average with every attribute pair kept.
vga = load_benchmark("vg_attribution", data_root, profile_name=profile.name)
credit = choice_credit(choice_scores(encode_task(encoders["real"], vga, progress=False), vga), vga.answer, vga.ties)
all_pairs, per_pair = macro_accuracy(credit, vga.group, min_count=1)
vga_filtered = result(results[results["benchmark"] == "vg_attribution"], "CLIP", "macro accuracy")
publish("ex_vga_all_pairs", all_pairs)
publish("ex_vga_filtered", vga_filtered)
publish("ex_vga_pairs", len(per_pair))
smallest = publish("ex_vga_smallest_pair", per_pair["count"].min())
if profile.is_offline:
    claim("offline, every attribute pair of the analogue has at least 25 items", smallest, above=24.5)
    claim("so the filter changes nothing offline", abs(all_pairs - vga_filtered), below=1e-9)

# Exercise 2: SugarCrepe with ties counted as correct, per subset and model.
sugar_task = readable_task(load_benchmark("sugarcrepe", data_root, profile_name=profile.name))
sugar_emb = encode_task(encoders["real"], sugar_task, progress=False)
tied = 0.0  # the largest share, over subsets and models, of items whose true option ties with the best other one
for labclip_map in (None, real_map):  # CLIP, LABCLIP
    sugar_scores = choice_scores(sugar_emb, sugar_task, labclip_map)
    change = pd.Series(choice_credit(sugar_scores, sugar_task.answer, "correct")
                       - choice_credit(sugar_scores, sugar_task.answer, "strict")).groupby(sugar_task.subset).mean()
    tied = max(tied, change.max())
publish("ex_sugarcrepe_tied", tied)
claim("offline no SugarCrepe item ties, so no subset changes", tied, between=(0.0, 0.0))

# Exercise 3: COCO-Order with the scramblings of another seed, next to the headline's (seed 0).
order_seed = {seed: readable_task(load_order(data_root / BENCHMARKS["coco_order"].dataset, "coco_order",
                                             default_tagger(profile.name, data_root), seed=seed))
              for seed in (0, 1)}
order_accuracy = {(seed, model): choice_credit(choice_scores(encode_task(encoders["real"], task, progress=False),
                                                             task, labclip_map), task.answer, task.ties).mean()
                  for seed, task in order_seed.items()
                  for model, labclip_map in {"CLIP": None, "LABCLIP": real_map}.items()}
for model in ("CLIP", "LABCLIP"):
    claim(f"seed 0 is the headline's COCO-Order ({model})",
          abs(order_accuracy[0, model] - headline_order[model]), below=1e-9)
    publish(f"ex_order_seed1_{model.lower()}", order_accuracy[1, model])
spread = publish("ex_order_seed_spread", max(abs(order_accuracy[1, m] - order_accuracy[0, m])
                                            for m in ("CLIP", "LABCLIP")))
claim("a seed moves COCO-Order far less than LABCLIP's lead over CLIP (less than a quarter of it)", spread,
      below=(headline_order["LABCLIP"] - headline_order["CLIP"]) / 4)

# %% [markdown]
# ## Exercises
#
# 1. Compute ARO VG-Attribution's macro average with a minimum of 1 instead of 25 items per attribute pair
#    (`labclip_utils.metrics.macro_accuracy`). How much does the filter change the number offline?
# 2. Re-score SugarCrepe with ties counted as correct (`choice_credit(..., ties="correct")`). Which subsets
#    change, and why are ties more frequent for some models than others?
# 3. The order benchmarks' perturbations depend on the seed. Load COCO-Order with `seed=1`
#    (`labclip_utils.benchmarks.aro.load_order`) and compare. How large is the seed-to-seed spread?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. `macro_accuracy(correct, task.group, min_count=1)` with `correct` from `choice_credit(choice_scores(...),
#    task.answer, "first")`. Offline it changes nothing: every one of the analogue's
#    {glue:text}`ex_vga_pairs:.0f` attribute pairs has at least 25 items (the smallest has
#    {glue:text}`ex_vga_smallest_pair:.0f`), so the filter drops none and both averages are
#    {glue:text}`ex_vga_all_pairs:.3f` for CLIP (with ARO's filter: {glue:text}`ex_vga_filtered:.3f`). The filter
#    matters on data with rarer pairs: there a pair of a few items swings the macro mean, and the filter trades
#    coverage for stability.
# 2. Offline none changes: no item ties for either model, in any subset (the largest share of tied items in a
#    subset is {glue:text}`ex_sugarcrepe_tied:.3f`). Ties are rare for real-valued cosines unless two options are
#    the *same string* or the model ignores word order completely: a bag-of-words text encoder gives exactly equal
#    scores to swapped captions, so ties count for the most bag-of-words-like models. The miniature's text tower
#    reads word order, so even its swapped captions do not tie.
# 3. `load_order(data_root / "coco", "coco_order", default_tagger(profile.name, data_root), seed=1)` writes a
#    second stored file next to the first. With seed 1 COCO-Order gives {glue:text}`ex_order_seed1_clip:.3f` for
#    CLIP and {glue:text}`ex_order_seed1_labclip:.3f` for LABCLIP, against
#    {glue:text}`bench_aro_coco_order_clip:.3f` and {glue:text}`bench_aro_coco_order_labclip:.3f` with seed 0: a
#    seed moves them by at most {glue:text}`ex_order_seed_spread:.3f`, far less than LABCLIP's lead. That is the
#    noise floor to keep in mind when comparing models that differ by a point.
# ```
