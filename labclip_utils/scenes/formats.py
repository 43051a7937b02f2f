"""Reading and writing scenes in the real datasets' file formats.

- **CLEVR as LABCLIP renders it**: ``images_{N}obj/CLEVR_{N}obj_{i:06d}.png``, one scene JSON per image in
  ``scenes_{N}obj/`` (``objects`` with ``shape``, ``color``, ``size``, ``material``, ``3d_coords``,
  ``pixel_coords``...), and the header-less ``output_{N}obj.csv`` (``filename,shape1,color1,shape2,color2``).
- **PUG:SPAR**: ``labels.csv`` (``filename, world_name, character_name, character2_name, character1_pos,
  character2_pos, character_texture, character2_texture``), images at ``<root>/<filename>``, filtered as
  LABCLIP does (two different, non-blank animals, neither texture ``Default``).
- **PUG:SPARE**: ``PUG_SPARE.csv`` (same fields, ``character_pos``/``character2_pos`` empty except for the
  position-varied images), images at ``<root>/<world_name>/<filename>``.

Generated scenes are saved in the same formats (plus ``labclip.json`` with the caption/negative/split
settings), so one loader, :func:`load_scenes`, serves generated data and the real datasets. Bad metadata
raises ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pandas as pd
from PIL import Image

from labclip_utils.io.files import replace_folder
from labclip_utils.progress import tqdm
from labclip_utils.scenes.captions import CaptionStyle
from labclip_utils.scenes.dataset import SceneDataset, SceneSettings
from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES, SIZES, SceneObject, SceneRecord

SETTINGS_FILE = "labclip.json"
SPAR_FILE = "labels.csv"
SPARE_FILE = "PUG_SPARE.csv"
SPAR_COLUMNS = (
    "filename", "world_name", "character_name", "character2_name",
    "character1_pos", "character2_pos", "character_texture", "character2_texture",
)
SPARE_COLUMNS = (
    "filename", "world_name", "character_name", "character2_name",
    "character_texture", "character2_texture", "character_pos", "character2_pos",
)
#: Columns without which no swap test can be built; positions are optional (the swap test does not use them).
SPAR_REQUIRED = ("filename", "character_name", "character2_name", "character_texture", "character2_texture")
SPARE_REQUIRED = ("filename", "world_name", *SPAR_REQUIRED[1:])
#: Where PUG's coarse positions put an object centre, in [0, 1] image coordinates. PUG's own scripts write
#: left/right and bottom/top; the book's generated files write below/above. Other values are kept as they are
#: (in ``record.extra``) with no coordinates.
PUG_POSITIONS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "below": (0.5, 0.75), "above": (0.5, 0.25),
                 "bottom": (0.5, 0.75), "top": (0.5, 0.25), "center": (0.5, 0.5), "centre": (0.5, 0.5)}
CLEVR_DIRECTIONS = {
    "behind": [-0.754, 0.657, 0.0], "front": [0.754, -0.657, -0.0], "left": [-0.657, -0.754, 0.0],
    "right": [0.657, 0.754, -0.0], "above": [0.0, 0.0, 1.0], "below": [-0.0, -0.0, -1.0],
}
#: Captions as the paper writes them for the real datasets: no articles ("red cube and blue sphere").
PAPER_STYLE = CaptionStyle(article=False)


# -- CLEVR ----------------------------------------------------------------------------------------------------
def _clevr_scene_json(rec: SceneRecord, index: int, filename: str, size: int, split: str) -> dict:
    objs = []
    for o in rec.objects:
        objs.append({
            "shape": o.shape, "color": o.color, "size": o.size, "material": o.material,
            "3d_coords": [round(6 * o.x - 3, 4), round(6 * o.y - 3, 4), SIZES.get(o.size, 0.7)],
            "rotation": 0.0,
            "pixel_coords": [int(round(o.x * size)), int(round(o.y * size)), round(10 + 6 * o.y, 4)],
        })
    rel = {
        "right": [[j for j, b in enumerate(rec.objects) if b.x > a.x] for a in rec.objects],
        "left": [[j for j, b in enumerate(rec.objects) if b.x < a.x] for a in rec.objects],
        "front": [[j for j, b in enumerate(rec.objects) if b.y > a.y] for a in rec.objects],
        "behind": [[j for j, b in enumerate(rec.objects) if b.y < a.y] for a in rec.objects],
    }
    return {
        "split": split, "image_index": index, "image_filename": filename, "objects": objs,
        "directions": CLEVR_DIRECTIONS, "relationships": rel,
        # Our extension, ignored by other readers: enough to re-render the scene exactly.
        "labclip": {"world": rec.world, "seed": rec.seed, "background": list(rec.background),
                    "radius": [o.radius for o in rec.objects], "x": [o.x for o in rec.objects],
                    "y": [o.y for o in rec.objects]},
    }


def _write_clevr(ds: SceneDataset, folder: Path, progress: bool) -> None:
    counts = {len(r.objects) for r in ds.records}
    if len(counts) != 1:
        raise ValueError(f"{ds.name}: CLEVR layout needs one object count per folder, got {sorted(counts)}")
    n = counts.pop()
    (folder / f"images_{n}obj").mkdir(parents=True)
    (folder / f"scenes_{n}obj").mkdir()
    rows = []
    size = ds.settings.image_size
    for i in tqdm(range(len(ds)), desc="writing CLEVR scenes", disable=not progress):
        rec = ds.records[i]
        name = f"CLEVR_{n}obj_{i:06d}.png"
        Image.fromarray(ds.image(i)).save(folder / f"images_{n}obj" / name)
        scene = _clevr_scene_json(rec, i, name, size, f"{n}obj")
        (folder / f"scenes_{n}obj" / name.replace(".png", ".json")).write_text(json.dumps(scene))
        rows.append([name] + [v for o in rec.objects for v in (o.shape, o.color)])
    with open(folder / f"output_{n}obj.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def _safe_relative(name: str, path: Path, where: str) -> str:
    """A file name from a data file, refused if it would leave the dataset folder (``../``, absolute paths)."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"{path}: {where}: image path {name!r} leaves the dataset folder")
    return name


def _field(data: dict, key: str, path: Path, where: str = ""):
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{path}: missing field {where}{key!r}")
    return data[key]


def _check_vocab(value: str, vocab, path: Path, field: str) -> str:
    if value not in vocab:
        raise ValueError(f"{path}: field {field} has unknown value {value!r}; expected one of {sorted(vocab)}")
    return value


def read_clevr_scene(path: Path) -> SceneRecord:
    """One CLEVR scene JSON → a record (objects in file order; positions from ``pixel_coords``)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    objects = _field(data, "objects", path)
    if not isinstance(objects, list) or not objects:
        raise ValueError(f"{path}: field 'objects' must be a non-empty list")
    ext = data.get("labclip") or {}
    fname = _field(data, "image_filename", path)
    width = None
    out = []
    for k, o in enumerate(objects):
        shape = _check_vocab(_field(o, "shape", path, f"objects[{k}]."), SHAPES, path, f"objects[{k}].shape")
        color = _check_vocab(_field(o, "color", path, f"objects[{k}]."), CLEVR_COLORS, path, f"objects[{k}].color")
        size = _check_vocab(o.get("size", "large"), SIZES, path, f"objects[{k}].size")
        if ext:
            x, y, r = ext["x"][k], ext["y"][k], ext["radius"][k]
        else:
            px = _field(o, "pixel_coords", path, f"objects[{k}].")
            if width is None:  # real CLEVR renders are 480×320; read the size from the image if it is there
                img = Path(path).parent.parent / f"images_{len(objects)}obj" / fname
                width, height = Image.open(img).size if img.exists() else (480, 320)
            x, y, r = px[0] / width, px[1] / height, float("nan")
        out.append(SceneObject(shape=shape, color=color, size=size, material=o.get("material", "rubber"),
                               x=float(x), y=float(y), radius=float(r)))
    return SceneRecord(
        objects=tuple(out), world=ext.get("world", "clevr"), seed=ext.get("seed"),
        background=tuple(ext.get("background", (0.62, 0.62, 0.62))),
    )


def read_clevr(folder: Path, n_objects: int | None = None, progress: bool = False) -> list[SceneRecord]:
    """Records from a CLEVR-layout folder: ``output_{N}obj.csv`` lists the images; scene JSONs add detail.

    As LABCLIP's loader does, rows whose image is missing are skipped (with a warning naming them).
    """
    folder = Path(folder)
    csvs = sorted(folder.glob("output_*obj.csv"))
    if n_objects is not None:
        csvs = [c for c in csvs if c.name == f"output_{n_objects}obj.csv"]
    if not csvs:
        raise FileNotFoundError(f"{folder}: no output_{{N}}obj.csv found (CLEVR layout)")
    records, missing = [], []
    for csv_path in csvs:
        n = csv_path.name.removeprefix("output_").removesuffix("obj.csv")
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
        for line, row in enumerate(tqdm(rows, desc=f"reading {csv_path.name}", disable=not progress), start=1):
            if len(row) < 3 or len(row) % 2 == 0:
                raise ValueError(f"{csv_path}: line {line}: expected filename then shape,colour pairs, got {row}")
            fname = _safe_relative(row[0], csv_path, f"line {line}")
            image = f"images_{n}obj/{fname}"
            if not (folder / image).exists():
                missing.append(f"{image} ({csv_path.name} line {line})")
                continue
            pairs = [(row[i], row[i + 1]) for i in range(1, len(row), 2)]
            for k, (shape, color) in enumerate(pairs):
                _check_vocab(shape, SHAPES, csv_path, f"line {line} shape{k + 1}")
                _check_vocab(color, CLEVR_COLORS, csv_path, f"line {line} color{k + 1}")
            scene_path = folder / f"scenes_{n}obj" / fname.replace(".png", ".json")
            if scene_path.exists():
                rec = read_clevr_scene(scene_path)
                if [(o.shape, o.color) for o in rec.objects] != pairs:
                    raise ValueError(f"{scene_path}: objects disagree with {csv_path.name} line {line}")
            else:
                rec = SceneRecord(objects=tuple(SceneObject(shape=s, color=c) for s, c in pairs), seed=None)
            records.append(SceneRecord(objects=rec.objects, world=rec.world, seed=rec.seed,
                                       background=rec.background, image_file=image))
    if missing:
        warnings.warn(f"{folder}: skipped {len(missing)} CSV rows whose image file is missing: "
                      f"{', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}", stacklevel=2)
    return records


# -- PUG:SPAR / PUG:SPARE -------------------------------------------------------------------------------------
def _read_csv(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err
    absent = [c for c in required if c not in table.columns]
    if absent:
        raise ValueError(f"{path}: missing column(s) {absent}; found {list(table.columns)}")
    for column in optional:
        if column not in table.columns:
            table[column] = ""
    return table


def _position(value: str) -> tuple[float, float]:
    """Coordinates of a PUG position word; NaN for an empty or unfamiliar value (positions are not needed)."""
    return PUG_POSITIONS.get(value.strip().lower(), (float("nan"), float("nan")))


def _pug_records(table: pd.DataFrame, path: Path, spar: bool, image_dir: bool) -> list[SceneRecord]:
    records = []
    pos1, pos2 = ("character1_pos", "character2_pos") if spar else ("character_pos", "character2_pos")
    for line, row in enumerate(table.itertuples(index=False), start=2):
        r = row._asdict()
        names = (r["character_name"].strip(), r["character2_name"].strip())
        textures = (r["character_texture"].strip(), r["character2_texture"].strip())
        # LABCLIP's filter: two different animals, none blank, neither texture Default.
        if any(n == "" or n.lower() == "blank" for n in names) or names[0] == names[1]:
            continue
        if any(t == "" or t.lower() == "default" for t in textures):
            continue
        if not r["filename"]:
            raise ValueError(f"{path}: line {line}: empty field filename")
        _safe_relative(r["filename"], path, f"line {line}")
        if r["world_name"]:
            _safe_relative(r["world_name"], path, f"line {line}")
        xy = [_position(r[pos1]), _position(r[pos2])]
        objs = tuple(
            SceneObject(shape=n, color=t, x=x, y=y, radius=float("nan"))
            for n, t, (x, y) in zip(names, textures, xy, strict=True)
        )
        image = f"{r['world_name']}/{r['filename']}" if image_dir else r["filename"]
        records.append(SceneRecord(
            objects=objs, world="spar" if spar else "spare", seed=None, image_file=image,
            extra={"world_name": r["world_name"], "positions": (r[pos1], r[pos2]),
                   "position_varied": bool(r[pos1] or r[pos2]) and not spar},
        ))
    return records


def read_pug_spar(folder: Path) -> list[SceneRecord]:
    """Records from PUG:SPAR's ``labels.csv`` with LABCLIP's filter applied."""
    path = Path(folder) / SPAR_FILE
    optional = tuple(c for c in SPAR_COLUMNS if c not in SPAR_REQUIRED)
    return _pug_records(_read_csv(path, SPAR_REQUIRED, optional), path, spar=True, image_dir=False)


def read_pug_spare(folder: Path) -> list[SceneRecord]:
    """Records from PUG:SPARE's CSV (images under ``<world_name>/``); position-varied rows are flagged in
    ``record.extra["position_varied"]``."""
    path = Path(folder) / SPARE_FILE
    optional = tuple(c for c in SPARE_COLUMNS if c not in SPARE_REQUIRED)
    return _pug_records(_read_csv(path, SPARE_REQUIRED, optional), path, spar=False, image_dir=True)


def _pug_positions(rec: SceneRecord) -> tuple[str, str]:
    a, b = rec.objects
    if abs(a.x - b.x) >= abs(a.y - b.y):
        return ("left", "right") if a.x < b.x else ("right", "left")
    return ("below", "above") if a.y > b.y else ("above", "below")


def _write_pug(ds: SceneDataset, folder: Path, spar: bool, progress: bool) -> None:
    world_name = "generated"
    image_dir = folder if spar else folder / world_name
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(len(ds)), desc="writing PUG scenes", disable=not progress):
        rec = ds.records[i]
        if len(rec.objects) != 2:
            raise ValueError(f"{ds.name}: PUG formats hold exactly two objects per image")
        name = f"{i:07d}.png"
        Image.fromarray(ds.image(i)).save(image_dir / name)
        (a, b), (p1, p2) = rec.objects, _pug_positions(rec)
        row = {"filename": name, "world_name": world_name, "character_name": a.shape, "character2_name": b.shape,
               "character_texture": a.color, "character2_texture": b.color}
        if spar:
            row |= {"character1_pos": p1, "character2_pos": p2}
        else:  # SPARE leaves positions empty for its position-free images
            row |= {"character_pos": "", "character2_pos": ""}
        rows.append(row)
    pd.DataFrame(rows, columns=list(SPAR_COLUMNS if spar else SPARE_COLUMNS)).to_csv(
        folder / (SPAR_FILE if spar else SPARE_FILE), index=False
    )


# -- one saver, one loader ------------------------------------------------------------------------------------
def save_scenes(ds: SceneDataset, folder: str | Path, *, overwrite: bool = False, progress: bool = False) -> Path:
    """Write a dataset in its world's real format (CLEVR for ``clevr``, PUG for ``spar``/``spare``).

    The folder appears complete or not at all: files go to a temporary sibling that is renamed at the end.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder}: already exists (pass overwrite=True to replace it)")
    worlds = {r.world for r in ds.records}
    if len(worlds) != 1:
        raise ValueError(f"{ds.name}: cannot save a mix of worlds {sorted(worlds)} in one folder")
    world = worlds.pop()

    def write(tmp: Path) -> None:
        if world == "clevr":
            _write_clevr(ds, tmp, progress)
        else:
            _write_pug(ds, tmp, spar=world == "spar", progress=progress)
        meta = {"world": world, "name": ds.name, "settings": ds.settings.to_json(),
                "attributes": list(ds.attributes), "objects": list(ds.objects)}
        (tmp / SETTINGS_FILE).write_text(json.dumps(meta, indent=1))

    return replace_folder(folder, write)


def load_scenes(folder: str | Path, settings: SceneSettings | None = None, progress: bool = False) -> SceneDataset:
    """Read scenes from a folder in CLEVR, PUG:SPAR or PUG:SPARE layout (generated or real).

    Caption, negative and split settings come from ``settings``, else from the folder's ``labclip.json``
    (written by :func:`save_scenes`), else the paper's defaults (captions without articles).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    meta: dict = {}
    if (folder / SETTINGS_FILE).exists():
        try:
            meta = json.loads((folder / SETTINGS_FILE).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{folder / SETTINGS_FILE}: not valid JSON ({err})") from err
    if (folder / SPAR_FILE).exists():
        records = read_pug_spar(folder)
    elif (folder / SPARE_FILE).exists():
        records = read_pug_spare(folder)
    else:
        records = read_clevr(folder, progress=progress)
    if not records:
        raise ValueError(f"{folder}: no usable scenes (all rows filtered out or images missing)")
    if settings is None:
        settings = SceneSettings.from_json(meta["settings"]) if "settings" in meta else SceneSettings(style=PAPER_STYLE)
    return SceneDataset(
        records, settings, root=folder, name=meta.get("name", folder.name),
        attributes=meta.get("attributes"), objects=meta.get("objects"),
    )

