"""Image benchmark: every image family on scikit-learn's 8x8 digits, with the pipeline's metrics.

Per family (default config, the `images` trainer preset: batch 64, up to 50 epochs, patience 10),
on a seeded 80/20 split stratified on the label: fit time; sampling speed (images/s through
`sample_batches`); and, for 2,000 synthetic images, `synthaug.validation.image.image_metrics`:
TSTR accuracy against train-on-real, Fréchet distance (and its ratio to the real holdout's own
distance), precision/recall/coverage (k = 5), DCR share and near-duplicate excess. A trivial
baseline (per-class mean image + Gaussian pixel noise with the per-class pixel std) is scored
the same way, so a family that does not beat it is visibly broken.

    python benchmarks/images.py                       # prints a Markdown table
    python benchmarks/images.py --out benchmarks/RESULTS.md   # and appends it there
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthaug.config.pipeline import conf_dirs, load_preset  # noqa: E402
from synthaug.generators.base import get_generator  # noqa: E402
from synthaug.io.images import read_images  # noqa: E402
from synthaug.training.config import TrainerConfig  # noqa: E402
from synthaug.validation.image import image_metrics  # noqa: E402

FAMILIES = ("image_vae", "image_gan", "image_rbm")


def split(data, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(data))
    tr, ho = train_test_split(idx, test_size=0.2, random_state=seed, stratify=data.labels)
    return data.take(np.sort(tr)), data.take(np.sort(ho))


def baseline(train, n: int, seed: int):
    """Per-class mean image plus Gaussian noise with the per-class pixel std, labels by class frequency."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(train.labels, n)
    images = np.empty((n, *train.images.shape[1:]), dtype=np.uint8)
    for k in np.unique(labels):
        real = train.images[train.labels == k].astype(float)
        sel = labels == k
        draw = real.mean(0) + rng.normal(0, 1, (sel.sum(), *real.shape[1:])) * real.std()
        images[sel] = np.clip(np.round(draw), 0, 255).astype(np.uint8)
    return images, labels


def row(name, metrics, fit_s, rate):
    fid, tstr, priv = metrics["fidelity"], metrics["tstr"], metrics["privacy"]
    ratio = fid["frechet_distance"] / fid["frechet_distance_holdout"]
    return (
        f"| {name} | {tstr['synthetic_accuracy']:.3f} | {tstr['real_accuracy']:.3f} | {fid['frechet_distance']:.3f} | {ratio:.2f} | "
        f"{fid['precision']:.3f} | {fid['recall']:.3f} | {fid['coverage']:.3f} | {max(priv['dcr_share_pixel'], priv['dcr_share_feature']):.3f} | "
        f"{priv['near_duplicate_excess']:.3f} | {fit_s} | {rate} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="synthetic images scored per family")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    started = time.time()
    data = read_images("sklearn:digits")
    train, holdout = split(data, args.seed)
    trainer = TrainerConfig(**load_preset("trainer", "images", conf_dirs(), "benchmark"), progress_bar=False)
    lines = [
        "| family | TSTR acc | train-on-real | Fréchet | ratio to holdout | precision | recall | coverage | DCR share | near-dup excess | fit s | sample img/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.families.split(","):
        t0 = time.perf_counter()
        gen = get_generator(name)().fit(train, train.schema, trainer, seed=args.seed)
        fit_s = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        batches = list(gen.sample_batches(args.n, seed=args.seed + 1, batch_size=1000))
        rate = int(args.n / (time.perf_counter() - t0))
        images = np.concatenate([b.images for b in batches])
        labels = np.concatenate([b.labels for b in batches])
        m = image_metrics(train.images, train.labels, holdout.images, holdout.labels, images, labels, 10, seed=args.seed)
        lines.append(row(name, m, fit_s, rate))
        print(lines[-1], flush=True)
    images, labels = baseline(train, args.n, args.seed)
    m = image_metrics(train.images, train.labels, holdout.images, holdout.labels, images, labels, 10, seed=args.seed)
    lines.append(row("baseline: class mean + noise", m, "-", "-"))
    print(lines[-1])
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    text = (
        f"\n## Images: digits ({dt.datetime.now():%Y-%m-%d %H:%M}, {time.time() - started:.0f} s in all)\n\n"
        f"Command: `{command}`; 1,437 training / 360 holdout images (seed {args.seed}); {args.n} synthetic images per family; "
        f"trainer preset `images`; 1 torch thread.\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    if args.out:
        with args.out.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
