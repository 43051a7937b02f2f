"""Fitting A: the book's trainer against a loop written the way the paper's code does it, on the same recipe.

Data: synthetic unit-norm embeddings (50k train, 5k validation, D=512) in which binding is linearly recoverable
but misaligned and noisy, so A must learn something and no A is perfect
(``labclip_utils.labclip.synthetic_binding_embeddings``).

Reference (as in the paper's ``coco_alignment.py``): a DataLoader over a TensorDataset, batch 1024, Adam lr 1e-3,
10 epochs, ``.to(device)`` per batch, validation once per epoch. Ours: ``fit_labclip`` with the same recipe
(``LabclipConfig.coco()``), tensors indexed in place. Both start from A = I and t = 0; both keep the last epoch.

    python speed/labclip_fit_speed.py

Last line: ``speedup=<ratio> val_acc_ours=<a> val_acc_reference=<a>``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from labclip_utils.labclip import (
    LabclipConfig,
    LabclipMap,
    fit_labclip,
    hard_negative_loss,
    synthetic_binding_embeddings,
)
from labclip_utils.metrics import swap_accuracy
from labclip_utils.profile import resolve_device


def reference_fit(train, val, epochs: int, device: str) -> tuple[float, float]:
    """The paper-style loop; returns (seconds, final validation swap accuracy)."""
    torch.manual_seed(0)
    model = LabclipMap(train[0].shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(*train), batch_size=1024, shuffle=True)
    start = time.perf_counter()
    acc = 0.0
    for _ in range(epochs):
        for img, pos, neg in loader:
            img, pos, neg = img.to(device), pos.to(device), neg.to(device)
            loss = hard_negative_loss(img, model(pos), model(neg), model.logit_scale)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            v = [t.to(device) for t in val]
            acc = swap_accuracy(v[0], model(v[1]), model(v[2]))
    return time.perf_counter() - start, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device("auto")
    train = synthetic_binding_embeddings(args.n, args.dim, seed=0, noise=1.0)
    val = synthetic_binding_embeddings(5000, args.dim, seed=1, noise=1.0)
    print(f"before: val swap {swap_accuracy(*val):.3f} (A = I)")
    ref_s, ref_acc = reference_fit(train, val, args.epochs, device)
    print(f"reference: {args.epochs} epochs in {ref_s:.2f} s, val swap {ref_acc:.3f}")
    config = LabclipConfig(lr=1e-3, batch_size=1024, epochs=args.epochs)
    start = time.perf_counter()
    fit = fit_labclip(train, val, config, progress=False)
    ours_s = time.perf_counter() - start
    ours_acc = float(fit.history["val_swap"].iloc[-1])
    print(f"ours: {args.epochs} epochs in {ours_s:.2f} s, val swap {ours_acc:.3f}")
    print(f"speedup={ref_s / ours_s:.2f} val_acc_ours={ours_acc:.3f} val_acc_reference={ref_acc:.3f}")


if __name__ == "__main__":
    main()
