"""Offline analogues of every benchmark, written in each benchmark's *real* file format from generated scenes.

The offline profile cannot download COCO, Visual Genome or PUG, so it writes small look-alikes: the same JSON/CSV
layouts and image folders, with images rendered by :mod:`labclip_utils.scenes` and captions in the miniature's
words. The real loaders, metrics and runner then run on them unchanged; the tests write tiny versions of the
same folders. What each analogue can and cannot say:

- **CLEVR / PUG:SPAR / PUG:SPARE**: the swap test on held-out combinations, as in the paper.
- **SugarCrepe**: replace/swap/add edits of a scene's caption (see :func:`sugarcrepe_items`). ``replace_rel`` needs
  relation words, which the miniature does not have; it is written with spatial captions for the code path only.
- **ARO VG-Attribution**: the swap test with ARO's file layout, crop boxes and macro average over attribute pairs.
  **VG-Relation** captions need relation words ("is left of"): written for the code path only.
- **COCO retrieval / COCO-Order / Flickr30k-Order**: 3-object scenes with 5 captions each (different object
  orders), in Karpathy's JSON format.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from labclip_utils.io.files import file_lock, replace_folder
from labclip_utils.io.hashing import code_digest
from labclip_utils.scenes import make_scenes, save_scenes
from labclip_utils.scenes.captions import Pair, caption_text
from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.scenes.negatives import (
    NoNegative,
    add_object,
    replace_attribute,
    replace_object,
    swap_attributes,
    swap_objects,
)


@dataclass(frozen=True)
class OfflineSizes:
    """How many scenes each analogue gets (the defaults keep the benchmark chapter within minutes on 2 cores)."""

    binding: int = 3000  # scenes per world; the swap test uses the held-out test combinations (~10%)
    sugarcrepe_images: int = 800
    vga: int = 2500
    vgr: int = 40
    karpathy_images: int = 300

    @classmethod
    def tiny(cls) -> OfflineSizes:
        """A few items per benchmark, for tests."""
        return cls(binding=60, sugarcrepe_images=12, vga=40, vgr=6, karpathy_images=6)


def _save_jpeg(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)


def _text(pairs: tuple[Pair, ...]) -> str:
    return caption_text(pairs, article=True)


def sugarcrepe_items(pairs: tuple[Pair, ...], attributes: tuple[str, ...], objects: tuple[str, ...],
                     rng: np.random.Generator) -> dict[str, tuple[str, str]]:
    """SugarCrepe's seven edits of one 2-object scene's caption, as ``subset → (caption, negative_caption)``.

    ``add_att`` follows SugarCrepe: the caption leaves one object's colour out, the negative adds a wrong one.
    ``replace_rel`` describes the left-to-right relation and replaces it with its opposite.
    """
    out: dict[str, tuple[str, str]] = {}
    edits = {"replace_obj": lambda p: replace_object(p, objects, rng),
             "replace_att": lambda p: replace_attribute(p, attributes, rng),
             "swap_obj": lambda p: swap_objects(p, rng), "swap_att": lambda p: swap_attributes(p, rng),
             "add_obj": lambda p: add_object(p, attributes, objects, rng)}
    for name, edit in edits.items():
        with contextlib.suppress(NoNegative):
            out[name] = (_text(pairs), _text(edit(pairs)))
    i = int(rng.integers(len(pairs)))
    wrong = [a for a in attributes if a != pairs[i][0]]
    bare = " and ".join(f"a {o}" if j == i else _text(((a, o),)) for j, (a, o) in enumerate(pairs))
    out["add_att"] = (bare, _text(tuple((wrong[int(rng.integers(len(wrong)))], o) if j == i else (a, o)
                                        for j, (a, o) in enumerate(pairs))))
    return out


def _relation_caption(pairs: tuple[Pair, ...], relation: str) -> str:
    (a1, o1), (a2, o2) = pairs[:2]
    return f"the {a1} {o1} is {relation} the {a2} {o2}"


def _left_right(ds: SceneDataset, i: int, rng: np.random.Generator) -> tuple[tuple[Pair, ...], str]:
    """The scene's two objects in a random order and the true relation of the first to the second."""
    first, second = (ds.records[i].objects[j] for j in rng.permutation(2))
    relation = "to the left of" if first.x < second.x else "to the right of"
    return ((first.color, first.shape), (second.color, second.shape)), relation


#: Items per SugarCrepe subset in the real benchmark; the analogue keeps these proportions.
SUGARCREPE_COUNTS = {"add_obj": 2062, "add_att": 692, "replace_obj": 1652, "replace_att": 788, "replace_rel": 1406,
                     "swap_obj": 245, "swap_att": 666}


def write_sugarcrepe(folder: Path, n_images: int, seed: int, image_size: int) -> None:
    """SugarCrepe's seven ``{subset}.json`` files and a ``val2017/`` folder of JPEGs.

    Subset sizes keep the real benchmark's proportions (the largest gets every image), so count-weighted and
    unweighted family means differ as they do on the real data.
    """
    largest = max(SUGARCREPE_COUNTS.values())
    quota = {k: max(2, round(n_images * v / largest)) for k, v in SUGARCREPE_COUNTS.items()}
    ds = make_scenes(n_images, "clevr", 2, seed=seed, image_size=image_size)
    rng = np.random.default_rng(seed)
    files: dict[str, list[dict]] = {}
    for i in range(len(ds)):
        name = f"{i:012d}.jpg"
        _save_jpeg(ds.image(i), folder / "val2017" / name)
        items = sugarcrepe_items(ds.pairs[i], ds.attributes, ds.objects, rng)
        pairs, relation = _left_right(ds, i, rng)
        opposite = "to the right of" if relation == "to the left of" else "to the left of"
        items["replace_rel"] = (_relation_caption(pairs, relation), _relation_caption(pairs, opposite))
        for subset, (pos, neg) in items.items():
            if len(files.get(subset, [])) < quota[subset]:
                files.setdefault(subset, []).append({"filename": name, "caption": pos, "negative_caption": neg})
    for subset, records in files.items():
        (folder / f"{subset}.json").write_text(json.dumps({str(k): r for k, r in enumerate(records)}, indent=1))


def write_aro(folder: Path, n_vga: int, n_vgr: int, seed: int, image_size: int) -> None:
    """ARO's ``visual_genome_{attribution,relation}.json`` and ``images/``, with boxes framing both objects."""
    ds = make_scenes(n_vga + n_vgr, "clevr", 2, seed=seed, image_size=image_size)
    rng = np.random.default_rng(seed)
    vga, vgr = [], []
    for i in range(len(ds)):
        name = f"{seed}_{i}.jpg"
        _save_jpeg(ds.image(i), folder / "images" / name)
        box = {"bbox_x": 0, "bbox_y": 0, "bbox_w": image_size, "bbox_h": image_size}
        if i < n_vga:
            try:
                negative = swap_attributes(ds.pairs[i])
            except NoNegative:
                continue
            vga.append({"image_id": name[:-4], "image_path": name, **box,
                        "attributes": [ds.pairs[i][0][0], ds.pairs[i][1][0]],
                        "true_caption": _text(ds.pairs[i]), "false_caption": _text(negative)})
        else:
            pairs, relation = _left_right(ds, i, rng)
            vgr.append({"image_id": name[:-4], "image_path": name, **box, "relation_name": relation,
                        "true_caption": _relation_caption(pairs, relation),
                        "false_caption": _relation_caption(pairs[::-1], relation)})
    (folder / "visual_genome_attribution.json").write_text(json.dumps(vga, indent=1))
    (folder / "visual_genome_relation.json").write_text(json.dumps(vgr, indent=1))


_ORDERS = ((0, 1, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0), (0, 2, 1))


def write_karpathy(folder: Path, kind: str, n_images: int, seed: int, image_size: int) -> None:
    """A Karpathy test JSON (``coco_karpathy_test.json`` or ``flickr30k_test.json``) with its images: 3-object
    scenes with distinct combinations, 5 captions each (the objects in 5 different orders)."""
    pool = make_scenes(n_images * 4, "clevr", 3, seed=seed, image_size=image_size)
    seen, records = set(), []
    for i in range(len(pool)):
        combo = tuple(sorted(pool.pairs[i]))
        if combo in seen:
            continue
        seen.add(combo)
        rel = (f"val2014/COCO_val2014_{i:012d}.jpg" if kind == "coco" else f"flickr30k-images/{seed}{i:06d}.jpg")
        _save_jpeg(pool.image(i), folder / rel)
        captions = [_text(tuple(pool.pairs[i][j] for j in order)) for order in _ORDERS]
        records.append({"image": rel, "caption": captions})
        if len(records) == n_images:
            break
    name = "coco_karpathy_test.json" if kind == "coco" else "flickr30k_test.json"
    (folder / name).write_text(json.dumps(records, indent=1))


def write_binding(folder: Path, world: str, n: int, seed: int, image_size: int) -> None:
    """Scenes of one world in its real layout (CLEVR, or PUG:SPAR/SPARE CSV and images)."""
    save_scenes(make_scenes(n, world, 2, seed=seed, image_size=image_size), folder)


def write_offline_benchmarks(root: str | Path, *, seed: int = 0, image_size: int = 64,
                             sizes: OfflineSizes = OfflineSizes()) -> Path:
    """Write every analogue under ``root/offline-<code>-<settings>/`` once and return that folder (``<code>``: a
    digest of the code that writes them, so an edit to it writes them again).

    The folder appears complete or not at all (built in a temporary sibling, renamed at the end, under a lock),
    so notebooks running in parallel share one copy.
    """
    settings = {"code": code_digest(__name__)[:12], "seed": seed, "image_size": image_size, **asdict(sizes)}
    tag = "-".join(str(v) for v in settings.values())
    folder = Path(root) / f"offline-{tag}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder):
        if (folder / "settings.json").is_file():
            return folder
        def write(tmp: Path) -> None:
            base = 50_000 + 1000 * seed
            for k, world in enumerate(("clevr", "spar", "spare")):
                write_binding(tmp / {"clevr": "clevr", "spar": "pug_spar", "spare": "pug_spare"}[world], world,
                              sizes.binding, base + k, image_size)
            write_sugarcrepe(tmp / "sugarcrepe", sizes.sugarcrepe_images, base + 10, image_size)
            write_aro(tmp / "aro", sizes.vga, sizes.vgr, base + 20, image_size)
            write_karpathy(tmp / "coco", "coco", sizes.karpathy_images, base + 30, image_size)
            write_karpathy(tmp / "flickr30k", "flickr30k", sizes.karpathy_images, base + 40, image_size)
            (tmp / "settings.json").write_text(json.dumps(settings, indent=1))

        replace_folder(folder, write)
    return folder
