"""Re-measure the miniature's design record: every variant tried while designing it, one seed each, with today's code.

Each row is one run of ``experiments/miniature.py --seeds 0`` with the arguments in its ``arguments`` column (the
``--set`` changes to the miniature's config, ``--pool`` the evaluation scenes that A is fitted on), trained from
scratch in a temporary folder. The table is written to ``labclip_utils/records/miniature_design.csv`` with the
``code_digest`` of the code that measured it, which chapter 2 shows and checks its sentences against.

    python experiments/miniature_design.py [--steps 1 5 9] [--csv PATH]

``--steps`` measures some rows only and writes nothing unless ``--csv`` is given (a record holds every row, all
measured by one code). On 2 CPU cores the nine rows take about an hour.

Last line: ``swap_N= text_probe_N= gap_N= labclip_N=`` for each step N measured (held-out swap test, held-out text
probe, centroid gap, held-out LABCLIP swap test), then ``minutes=``.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from miniature import POOL, parse_overrides, run

from labclip_utils.io.files import atomic_write
from labclip_utils.models.miniature import MiniatureConfig
from labclip_utils.records import record_digest

DESIGN_CSV = Path(__file__).resolve().parents[1] / "labclip_utils" / "records" / "miniature_design.csv"
SEED = 0  # the design was measured on one seed; experiments/miniature.py measures the chosen one on eight

#: step, what the variant changes, and the arguments of experiments/miniature.py that measure it
VARIANTS: tuple[tuple[int, str, str], ...] = (
    (1, "first miniature", "--set image_tower=conv4 text_pool=eot centre=true logit_scale=null"),
    (2, "mean text pooling", "--set image_tower=conv4 centre=true logit_scale=null"),
    (3, "uncentred heads", "--set image_tower=conv4"),
    (4, "local image tower (centred)", "--set centre=true logit_scale=null"),
    (5, "local image tower (uncentred): the chosen architecture", ""),
    (6, "5, text tower 3x longer", "--set text_steps=900"),
    (7, "5, image tower 2x longer", "--set image_steps=2400"),
    (8, "5, plus a parsing objective for the text tower", "--set text_parse_weight=1.0"),
    (9, "5, A fitted on a third of the evaluation scenes", f"--pool {POOL // 3}"),
)


def parse_arguments(arguments: str) -> tuple[dict, int]:
    """A row's ``arguments`` → (config overrides, evaluation pool), refusing anything experiments/miniature.py
    would not accept."""
    parser = argparse.ArgumentParser(prog="experiments/miniature.py", add_help=False)
    parser.add_argument("--set", nargs="*", default=[])
    parser.add_argument("--pool", type=int, default=POOL)
    args, extra = parser.parse_known_args(shlex.split(arguments))
    if extra:
        raise SystemExit(f"{arguments!r}: experiments/miniature.py takes --set and --pool here, not {extra}")
    return parse_overrides(args.set), args.pool


def describe(overrides: dict) -> dict[str, str]:
    """The columns a reader compares rows by: image tower, text pooling and the alignment heads."""
    config = replace(MiniatureConfig(seed=SEED), **overrides)
    scale = config.logit_scale
    temperature = "learned temperature" if scale is None else f"temperature fixed at {scale:g}"
    return {"image tower": config.image_tower,
            "text pooling": {"eot": "end-of-text token", "mean": "mean"}[config.text_pool],
            "heads": f"{'centred' if config.centre else 'uncentred'}; {temperature}"}


def measure(step: int, variant: str, arguments: str) -> dict:
    overrides, pool = parse_arguments(arguments)
    r = run(SEED, overrides, pool, directions=False)  # the record shows no direction cosines: skip their probes
    return {"step": step, "variant": variant, "arguments": arguments, **describe(overrides),
            "swap (held-out)": r["swap"], "image probe (held-out)": r["image_probe"],
            "text probe (held-out)": r["text_probe_heldout"],
            "random-init text probe (held-out)": r["random_text_probe_heldout"], "centroid gap": r["gap"],
            "LABCLIP swap (held-out)": r["swap_after_A_heldout"], "training (s)": round(r["train_s"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = [v[0] for v in VARIANTS]
    parser.add_argument("--steps", type=int, nargs="+", choices=steps, default=steps)
    parser.add_argument("--csv", type=Path, default=None,
                        help=f"write the table here (default when every step is measured: {DESIGN_CSV})")
    args = parser.parse_args()
    csv = args.csv or (DESIGN_CSV if sorted(args.steps) == steps else None)
    digest = record_digest("miniature_design.csv")  # before any training: the code that measures the rows
    start = time.perf_counter()
    rows = []
    for step, variant, arguments in VARIANTS:
        if step in args.steps:
            rows.append(measure(step, variant, arguments))
            print(f"step {step} ({variant}): trained in {rows[-1]['training (s)']} s, held-out swap "
                  f"{rows[-1]['swap (held-out)']:.3f}, held-out LABCLIP {rows[-1]['LABCLIP swap (held-out)']:.3f}",
                  flush=True)
    table = pd.DataFrame(rows).set_index("step").round(3)
    table["code_digest"] = digest
    if csv is not None:
        atomic_write(csv, lambda tmp: table.to_csv(tmp))
        print(f"design record written to {csv}")
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.drop(columns=["variant", "arguments", "code_digest"]))
    print(" ".join(f"swap_{s}={r['swap (held-out)']:.3f} text_probe_{s}={r['text probe (held-out)']:.3f} "
                   f"gap_{s}={r['centroid gap']:.3f} labclip_{s}={r['LABCLIP swap (held-out)']:.3f}"
                   for s, r in table.iterrows()) + f" minutes={(time.perf_counter() - start) / 60:.1f}")


if __name__ == "__main__":
    main()
