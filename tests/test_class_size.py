"""Class size (``LABCLIP_SIZE=class``): fixed subsets fetched image by image, the budget, and the usage counts."""

from __future__ import annotations

import copy
import json
import shutil
import zipfile

import pytest
import torch

from labclip_utils.benchmarks import subsets
from labclip_utils.benchmarks.aro import load_vg_relation
from labclip_utils.benchmarks.coco import load_coco_retrieval
from labclip_utils.benchmarks.offline import write_aro, write_karpathy, write_sugarcrepe
from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe
from labclip_utils.book.environment import class_downloads_gb, evaluation_counts, paper_workload
from labclip_utils.io import downloads
from labclip_utils.io.mirror import serve, write_manifest
from labclip_utils.profile import CLASS_BUDGET, MIRROR_ENV, current_profile
from labclip_utils.records import read_rehearsal
from labclip_utils.session import count_images
from labclip_utils.tasks import BenchmarkFormatError
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _fresh_manifests():
    downloads._MANIFESTS.clear()
    yield
    downloads._MANIFESTS.clear()


# -- the subset rule ------------------------------------------------------------------------------------------
def test_the_subset_is_fixed_and_does_not_depend_on_the_files_order():
    keys = [f"val2014/COCO_val2014_{i:012d}.jpg" for i in range(500)]
    kept = [keys[i] for i in subsets.pick(keys, 40)]
    shuffled = keys[::-1]
    assert sorted(shuffled[i] for i in subsets.pick(shuffled, 40)) == sorted(kept)
    assert subsets.pick(keys, 40) == sorted(subsets.pick(keys, 40))  # listed in the file's order
    assert len(kept) == 40 and kept != keys[:40]  # not simply the first items
    assert subsets.pick(keys[:10], 40) == list(range(10))  # fewer items than asked: all of them
    with pytest.raises(ValueError, match="unique"):
        subsets.pick(["a", "a"], 1)


# -- the budget -----------------------------------------------------------------------------------------------
def test_class_size_fits_the_budget_and_full_size_does_not():
    full, small = paper_workload("full"), paper_workload("class")
    assert list(full.index) == list(small.index)
    assert small["download (GB, published sizes)"].max() <= CLASS_BUDGET["download (GB)"]
    assert small["T4 estimate (min)"].max() <= CLASS_BUDGET["T4 minutes"]
    assert full.loc["06_labclip", "T4 estimate (min)"] > 60
    assert full.loc["07_benchmarks", "download (GB, published sizes)"] > 10
    # only the two chapters that class size changes differ
    changed = (full != small).any(axis=1)
    assert set(changed[changed].index) == {"06_labclip", "07_benchmarks"}
    with pytest.raises(ValueError, match="size"):
        paper_workload("tiny")


def test_the_model_shrinks_image_counts_with_the_fraction_and_keeps_downloads_whole():
    small, whole = paper_workload("class", 0.01), paper_workload("class")
    assert (small["ViT-L-14 image passes"] <= whole["ViT-L-14 image passes"]).all()
    assert small["ViT-L-14 image passes"].sum() < whole["ViT-L-14 image passes"].sum() / 10
    assert small["download (GB, published sizes)"].equals(whole["download (GB, published sizes)"])
    assert evaluation_counts(0.01)["pool"] == 360 and evaluation_counts()["pool"] == 36_000


def test_class_downloads_are_weighed_at_published_sizes():
    mean = 6_200 / 40_504
    files = {"coco/coco_karpathy_test.json": 10, "coco/val2014/COCO_val2014_000000000001.jpg": 3,
             "coco/val2014/COCO_val2014_000000000002.jpg": 3, "aro/vgr_vga_images.zip": 100, "SHA256SUMS": 1}
    expected = 0.338 + 1.0 + 0.002 + subsets.CLASS_ITEMS["coco_test_images"] * mean / 1000
    assert class_downloads_gb(files, ["ViT-B-32"]) == pytest.approx(expected)
    # a whole archive fetched at class size counts whole, and breaks the budget
    assert class_downloads_gb({**files, "coco/val2014.zip": 1}, ["ViT-B-32"]) > CLASS_BUDGET["download (GB)"]
    with pytest.raises(ValueError, match="not published"):
        class_downloads_gb({"clevr/clevr_2obj.zip": 1}, [])
    with pytest.raises(ValueError, match="no class subset"):
        class_downloads_gb({"coco/train2014/x.jpg": 1}, [])
    with pytest.raises(ValueError, match="registry"):
        class_downloads_gb({"coco/elsewhere.zip": 1}, [])


def test_the_size_setting(monkeypatch):
    monkeypatch.setenv("LABCLIP_SIZE", "class")
    assert current_profile("paper").is_class
    assert not current_profile("offline").is_class  # offline has nothing to shorten
    assert "class size" in current_profile("paper").summary()
    monkeypatch.setenv("LABCLIP_SIZE", "small")
    with pytest.raises(ValueError, match="LABCLIP_SIZE"):
        current_profile("paper")


# -- counting the images a chapter's encoders process -----------------------------------------------------------
class _Tower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x)


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = _Tower()


class _Encoder:
    def __init__(self):
        self.model = _Model().eval()


def test_usage_counts_encoded_and_trained_images(tmp_path):
    log = tmp_path / "usage" / "07.json"
    encoder = count_images(_Encoder(), "real", log)
    with torch.inference_mode():
        encoder.model.visual(torch.zeros(5, 3))
    copied = copy.deepcopy(encoder.model)  # CLIP-FT trains a copy: it is counted too, as training
    copied.train()
    copied.visual.train()
    copied.visual(torch.zeros(4, 3)).sum().backward()
    count_images(_Encoder(), "synthetic", log)
    control = count_images(_Encoder(), "synthetic", log, downloaded=False)  # a random-init control: no weights
    with torch.inference_mode():
        control.model.visual(torch.zeros(3, 3))
    assert json.loads(log.read_text()) == {"real": {"loaded": 1, "encoded": 5, "trained": 4},
                                           "synthetic": {"loaded": 1, "encoded": 3}}


# -- the class data, through a served mirror --------------------------------------------------------------------
@pytest.fixture
def class_mirror(tmp_path):
    """COCO's test JSON and per-image files, SugarCrepe's JSONs and per-image files, ARO's JSONs and image zip."""
    mirror, src = tmp_path / "mirror", tmp_path / "src"
    write_karpathy(src / "coco", "coco", 12, 0, 32)
    write_sugarcrepe(src / "sugarcrepe", 16, 1, 32)
    write_aro(src / "aro", 4, 4, 2, 32)
    (mirror / "coco").mkdir(parents=True)
    shutil.copy(src / "coco" / "coco_karpathy_test.json", mirror / "coco")
    shutil.copytree(src / "coco" / "val2014", mirror / "coco" / "val2014")
    shutil.copytree(src / "sugarcrepe", mirror / "sugarcrepe")
    (mirror / "aro").mkdir()
    for name in ("visual_genome_relation.json", "visual_genome_attribution.json"):
        shutil.copy(src / "aro" / name, mirror / "aro")
    with zipfile.ZipFile(mirror / "aro" / "vgr_vga_images.zip", "w") as z:
        for path in sorted((src / "aro" / "images").iterdir()):
            z.write(path, f"images/{path.name}")
    write_manifest(mirror, progress=False)
    return mirror


def test_class_data_fetches_only_the_subsets_images(class_mirror, tmp_path, monkeypatch):
    monkeypatch.setitem(subsets.CLASS_ITEMS, "coco_test_images", 5)
    monkeypatch.setitem(subsets.CLASS_ITEMS, "sugarcrepe_items", 7)
    usage: dict = {}
    with serve(class_mirror, usage=usage) as url:
        monkeypatch.setenv(MIRROR_ENV, f"{url}/@class")
        root = subsets.class_data(tmp_path / "data", workers=3, progress=False)
        served = dict(usage["class"]["files"])
        again = subsets.class_data(tmp_path / "data", workers=3, progress=False)
        assert again == root and usage["class"]["files"] == served  # the second call fetches nothing
    coco = load_coco_retrieval(root / "coco")
    assert len(coco.images) == 5
    sugar = load_sugarcrepe(root / "sugarcrepe")
    assert 5 <= len(sugar.options) <= 9  # 7 shared in proportion to the subsets' sizes (rounded per subset)
    assert len(load_vg_relation(root / "aro").options) == 4  # ARO whole
    per_image = {f for f in served if f.count("/") >= 2}
    assert per_image == ({f"coco/{image.path.split('/coco/')[1]}" for image in coco.images}
                         | {f"sugarcrepe/val2017/{image.path.rsplit('/', 1)[1]}" for image in sugar.images})
    assert not any(f.endswith(("val2014.zip", "val2017.zip")) for f in served)
    # every class draws the same items
    keys = [r["image"] for r in json.loads((class_mirror / "coco" / "coco_karpathy_test.json").read_text())]
    assert [r["image"] for r in json.loads((root / "coco" / "coco_karpathy_test.json").read_text())] == \
        [keys[i] for i in subsets.pick(keys, 5)]


def test_a_bad_image_path_in_an_annotation_file_is_refused_before_fetching(class_mirror, tmp_path, monkeypatch):
    records = json.loads((class_mirror / "coco" / "coco_karpathy_test.json").read_text())
    records = [{**r, "image": f"../../etc/passwd{i}"} for i, r in enumerate(records)]
    (class_mirror / "coco" / "coco_karpathy_test.json").write_text(json.dumps(records))
    write_manifest(class_mirror, progress=False)
    with serve(class_mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(BenchmarkFormatError, match="leaves the dataset folder"):
            subsets.coco_test_subset(tmp_path / "data", tmp_path / "data" / "class" / "coco", 3, progress=False)


def test_the_released_a_is_loaded_as_a_map(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "labclip_released"
    mirror.mkdir(parents=True)
    weight = torch.eye(4) + 0.1
    torch.save({"linear.weight": weight, "t": torch.tensor(4.266)}, mirror / "labclip_coco_neg_B32.pt")
    write_manifest(mirror.parent, progress=False)
    monkeypatch.setenv(MIRROR_ENV, str(mirror.parent))
    released = subsets.released_coco_map(tmp_path / "data", progress=False)
    assert torch.equal(released.A, weight) and released.logit_scale.item() == pytest.approx(71.2, abs=0.1)
    torch.save({"weight": weight}, tmp_path / "bad.pt")
    (tmp_path / "data2" / "labclip_released").mkdir(parents=True)
    shutil.copy(tmp_path / "bad.pt", mirror / "labclip_coco_neg_B32.pt")
    write_manifest(mirror.parent, progress=False)
    downloads._MANIFESTS.clear()
    with pytest.raises(BenchmarkFormatError, match="linear.weight"):
        subsets.released_coco_map(tmp_path / "data2", progress=False)


# -- the rehearsal's table ----------------------------------------------------------------------------------------
def test_the_rehearsal_charges_each_chapter_and_fails_over_the_budget(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import rehearse

    usage_dir = tmp_path / "usage"
    usage_dir.mkdir()
    (usage_dir / "02_miniature.json").write_text(json.dumps({"synthetic": {"loaded": 2, "encoded": 700}}))
    (usage_dir / "class-07_benchmarks.json").write_text(json.dumps({"real": {"loaded": 1, "encoded": 90}}))
    served = {"02_miniature": {"bytes": 0, "files": {}},
              "class-07_benchmarks": {"bytes": 5_000, "files": {"SHA256SUMS": 10, "aro/vgr_vga_images.zip": 4_000,
                                                                "coco/val2014/COCO_val2014_000000000001.jpg": 990}},
              "07_benchmarks": {"bytes": 9, "files": {"coco/train2014.zip": 9}}}  # the full-size run: not charged
    table, within = rehearse.class_budget(served, usage_dir)
    assert within
    assert table.loc["02_miniature", "images encoded"] == 700
    assert table.loc["02_miniature", "class download (GB, real data)"] == pytest.approx(0.89)  # ViT-L-14's weights
    row = table.loc["07_benchmarks"]
    assert (row["files fetched"], row["images fetched one by one"], row["image passes (measured)"]) == (1, 1, 90)
    # the estimate is the model's: measured passes below the model's at the same fraction do not lower it
    assert table["T4 estimate (min)"].to_dict() == paper_workload("class")["T4 estimate (min)"].to_dict()
    # a chapter that processes more images than the model predicts is charged in proportion, past the budget here
    predicted = int(paper_workload("class", float(rehearse.FRACTION)).loc["02_miniature", "ViT-L-14 image passes"])
    (usage_dir / "02_miniature.json").write_text(json.dumps({"synthetic": {"loaded": 1, "encoded": 2 * predicted,
                                                                           "trained": predicted}}))
    table, within = rehearse.class_budget(served, usage_dir)
    assert table.loc["02_miniature", "image passes (measured)"] == 5 * predicted
    assert table.loc["02_miniature", "T4 estimate (min)"] > CLASS_BUDGET["T4 minutes"] and not within
    (usage_dir / "02_miniature.json").write_text(json.dumps({"synthetic": {"loaded": 2, "encoded": 700}}))
    served["class-07_benchmarks"]["files"]["coco/val2014.zip"] = 1  # a whole archive at class size
    table, within = rehearse.class_budget(served, usage_dir)
    assert not within and not table.loc["07_benchmarks", "within budget"]


def test_the_recorded_rehearsal_measured_every_chapter_within_the_budget():
    """The record the setup chapter shows (``python tools/rehearse.py --record``): every chapter of the estimate,
    each within the budget, its estimate never below the model's (the measured passes only scale it up)."""
    recorded = read_rehearsal()
    model = paper_workload("class")
    assert list(recorded.index) == list(model.index)
    assert recorded["within budget"].all()
    assert (recorded["class download (GB, real data)"] <= CLASS_BUDGET["download (GB)"]).all()
    assert (recorded["T4 estimate (min)"] <= CLASS_BUDGET["T4 minutes"]).all()
    assert (recorded["T4 estimate (min)"] >= model["T4 estimate (min)"] - 0.05).all()
    # measured at class size: chapter 7 fetched its COCO and SugarCrepe images one by one, and encoded images
    assert recorded.loc["07_benchmarks", "images fetched one by one"] > 0
    assert (recorded["images encoded"] > 0).all()
    assert recorded["commit"].notna().all() and recorded["date"].notna().all()
