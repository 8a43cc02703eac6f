"""Difficulty calibration of the embedded glyph benchmark: a small conv4 trained on base, episodes on novel.

Trains conv4 (4 x [conv3x3(64), BN, ReLU, maxpool 2], 32x32 input -> 256-d features) with a cosine-softmax head
(scale β, additive margin m on the target logit) and Adam on the base split, then evaluates 5-way 1-shot and 5-shot
nearest-centroid (cosine) episodes with 15 queries on the novel (or val) split. Self-contained (plain torch), CPU by
default; not a test. The generator's distortion strengths were tuned with it so that 1-shot lands at ~50-70% and
5-shot at ~70-85%.

    python benchmarks/glyph_difficulty.py --epochs 10 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.glyphs import build_glyph_dataset  # noqa: E402

PAD = 2  # random-translation augmentation: pad by PAD px and crop back to the original size


def conv4() -> nn.Sequential:
    """4 x [conv3x3(64), BN, ReLU, maxpool 2] + flatten: [B, 3, 32, 32] -> [B, 256]."""
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [
            nn.Conv2d(3 if i == 0 else 64, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(*layers, nn.Flatten())


class CosineHead(nn.Module):
    """Cosine-softmax logits β (cos θ - m·[target]): features [B, D] -> logits [B, C]."""

    def __init__(self, dim: int, classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).T
        if labels is not None and self.margin:
            cosine = cosine - self.margin * F.one_hot(labels, cosine.shape[1])
        return self.scale * cosine


def split_tensors(split: str, cache: str | None, max_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float [N, 3, 32, 32] in [-1, 1] (channels-last) and labels int64 [N] of a glyph split.

    max_classes keeps every k-th class only (a quick, cheaper run), relabelled 0..C'-1.
    """
    dataset = build_glyph_dataset(split, cache)
    labels = dataset.labels
    classes = int(labels.max()) + 1
    step = max(1, classes // max_classes) if max_classes else 1
    chosen = np.flatnonzero(labels % step == 0) if step > 1 else np.arange(len(labels))
    images = np.stack([dataset.read(i) for i in chosen])
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return tensor.contiguous(memory_format=torch.channels_last), torch.from_numpy(labels[chosen] // step)


def random_translate(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to PAD px (zero padding): [B, 3, H, W] -> [B, 3, H, W]."""
    size = batch.shape[-1]
    padded = F.pad(batch, (PAD, PAD, PAD, PAD))
    offsets = torch.randint(0, 2 * PAD + 1, (len(batch), 2), generator=generator)
    shifted = [padded[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(offsets.tolist())]
    return torch.stack(shifted).contiguous(memory_format=torch.channels_last)


def train(images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace) -> nn.Module:
    """Train conv4 + cosine head on base; returns the backbone."""
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    backbone = conv4().to(memory_format=torch.channels_last)
    head = CosineHead(256, int(labels.max()) + 1, args.scale, args.margin)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=args.lr)
    for epoch in range(args.epochs):
        order = torch.randperm(len(images), generator=generator)
        total, correct, loss_sum, start = 0, 0, 0.0, time.time()
        backbone.train()
        for begin in range(0, len(order), args.batch_size):
            index = order[begin : begin + args.batch_size]
            batch, target = random_translate(images[index], generator), labels[index]
            logits = head(backbone(batch), target)
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(index)
            correct += int((logits.argmax(1) == target).sum())
            total += len(index)
        print(
            f"epoch {epoch + 1}: loss {loss_sum / total:.3f} train acc {100 * correct / total:.1f}% "
            f"({time.time() - start:.0f}s)",
            flush=True,
        )
    return backbone


@torch.no_grad()
def extract(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised features [N, 256] in eval mode."""
    backbone.eval()
    return F.normalize(torch.cat([backbone(chunk) for chunk in images.split(512)]), dim=1)


def episode_accuracies(features: torch.Tensor, labels: torch.Tensor, shot: int, args: argparse.Namespace) -> np.ndarray:
    """Nearest-centroid (cosine) accuracy of seeded n-way episodes with `args.queries` queries per class: [E]."""
    rng = np.random.Generator(np.random.PCG64(args.episode_seed))
    by_class = [np.flatnonzero(labels.numpy() == c) for c in range(int(labels.max()) + 1)]
    accuracies = []
    for _ in range(args.episodes):
        classes = rng.choice(len(by_class), args.way, replace=False)
        picks = np.stack([rng.choice(by_class[c], shot + args.queries, replace=False) for c in classes])
        episode = features[torch.from_numpy(picks)]  # [way, shot + queries, D]
        centroids = F.normalize(episode[:, :shot].mean(1), dim=1)
        predicted = (episode[:, shot:] @ centroids.T).argmax(-1)
        truth = torch.arange(args.way)[:, None]
        accuracies.append(float((predicted == truth).float().mean()))
    return np.array(accuracies)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", default=None, help="glyph cache dir (default: $NEGMARGIN_CACHE or ~/.cache/negmargin)"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-base-classes", type=int, default=None, help="train on a subset (quick runs)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--scale", type=float, default=10.0, help="cosine-softmax scale β")
    parser.add_argument("--margin", type=float, default=0.0, help="additive cosine margin m (negative allowed)")
    parser.add_argument("--eval-split", default="novel", choices=("val", "novel"))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episode-seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    """Train, evaluate and print 1-shot and 5-shot accuracies with 95% confidence half-widths."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    base_images, base_labels = split_tensors("base", args.cache, args.max_base_classes)
    eval_images, eval_labels = split_tensors(args.eval_split, args.cache)
    print(
        f"data: base {len(base_images)} images / {int(base_labels.max()) + 1} classes, {args.eval_split} "
        f"{len(eval_images)} / {int(eval_labels.max()) + 1} ({time.time() - start:.0f}s)",
        flush=True,
    )
    backbone = train(base_images, base_labels, args)
    features = extract(backbone, eval_images)
    for shot in (1, 5):
        accuracy = episode_accuracies(features, eval_labels, shot, args)
        half_width = 1.96 * accuracy.std(ddof=1) / np.sqrt(len(accuracy))
        print(f"{args.eval_split} {args.way}-way {shot}-shot: {100 * accuracy.mean():.2f} +- {100 * half_width:.2f}%")
    print(f"total {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
