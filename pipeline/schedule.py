"""The order training sees its images in: seeded epochs, global batches split over DDP processes,
optional aspect-ratio grouping, and one augmentation seed per sample."""
from __future__ import annotations

import bisect
from typing import Any, Iterator

import numpy as np
import torch

from pipeline.data import SeededSamples, collate

Keyed = list[tuple[int, int]]  # (dataset index, augmentation seed) per sample


def aspect_groups(images: list[dict[str, Any]], factor: int) -> list[int]:
    """Aspect-ratio bin of each COCO image (from its width/height, no image read), as torchvision's
    references quantise it for GroupedBatchSampler: 2k+1 log-spaced bins between 1/2 and 2."""
    bins = (2 ** np.linspace(-1, 1, 2 * factor + 1)).tolist() if factor > 0 else [1.0]
    return [bisect.bisect_right(bins, im["width"] / im["height"]) for im in images]


def epoch_batches(order: list[int], step: int, drop_last: bool, groups: list[int] | None = None) -> list[list[int]]:
    """One epoch's global batches of `step` indices in `order`.

    With `groups`, a batch is filled from one aspect-ratio group at a time (torchvision's
    GroupedBatchSampler buffering); the images left over in half-filled groups at the end of
    the epoch form mixed batches, so every image is still seen once per epoch.
    """
    if groups is None:
        full = [order[i:i + step] for i in range(0, len(order) - len(order) % step, step)]
    else:
        full, buffers = [], {}
        for idx in order:
            buf = buffers.setdefault(groups[idx], [])
            buf.append(idx)
            if len(buf) == step:
                full.append(buf)
                buffers[groups[idx]] = []
        left = [i for buf in buffers.values() for i in buf]
        full += [left[i:i + step] for i in range(0, len(left) - len(left) % step, step)]
        order = left
    rest = order[len(order) - len(order) % step:] if len(order) % step else []
    return full + ([rest] if rest and not drop_last else [])


def sample_seed(seed: int, epoch: int, batch: int, position: int) -> int:
    """The augmentation seed of the sample at `position` of global batch `batch` of `epoch`."""
    return int(np.random.SeedSequence([seed, epoch, batch, position]).generate_state(1)[0])


def batch_schedule(n: int, batch_size: int, seed: int, start_epoch: int, skip: int = 0, rank: int = 0,
                   world: int = 1, groups: list[int] | None = None,
                   weights: list[float] | None = None) -> Iterator[tuple[int, bool, Keyed]]:
    """Endless (epoch, last-batch-of-epoch, [(index, augmentation seed)]) sequence.

    Each epoch has its own seeded permutation. `skip` batches of the first epoch are skipped
    without loading them, so a resumed run sees exactly the batches an uninterrupted run would
    have seen, with the same augmentation seeds. Under DDP every process draws the same
    permutation and takes its own `batch_size` slice of each global batch of
    `batch_size * world` images; seeds follow the place in the global batch, so processes
    never share an augmentation stream. With `weights` (one per sample) an epoch is `n` seeded draws
    with replacement in proportion to them (torch's WeightedRandomSampler): how a mixed set gives
    each of its sources a configured share of the batches whatever their sizes.
    """
    step = batch_size * world
    drop_last = n > step
    epoch = start_epoch
    while True:
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = (torch.randperm(n, generator=gen) if weights is None else
                 torch.multinomial(torch.tensor(weights, dtype=torch.float64), n, replacement=True, generator=gen)).tolist()
        chunks = epoch_batches(order, step, drop_last, groups)
        for k in range(skip, len(chunks)):
            keyed = [(idx, sample_seed(seed, epoch, k, pos)) for pos, idx in enumerate(chunks[k])]
            # fewer images than processes: a process without a slice repeats the first image, own seed
            mine = keyed[rank::world] or [(keyed[0][0], sample_seed(seed, epoch, k, step + rank))]
            yield epoch, k + 1 == len(chunks), mine
        skip = 0
        epoch += 1


class _ScheduleSampler(torch.utils.data.Sampler):
    """The schedule's keyed batches as a DataLoader batch sampler (one loader for the whole run)."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __iter__(self):
        return (keyed for _, _, keyed in batch_schedule(*self.args))


def batches(dataset, batch_size: int, seed: int, workers: int, start_epoch: int, skip: int = 0,
            rank: int = 0, world: int = 1, groups: list[int] | None = None, weights: list[float] | None = None):
    """Endless (epoch, last-batch-of-epoch, batch) stream following `batch_schedule`.

    One DataLoader serves every epoch, so its workers start once and keep prefetching across
    epoch boundaries (small synthetic sets have few batches per epoch). Every sample is
    augmented under its own schedule seed (SeededSamples): the result does not depend on
    the number of workers.
    """
    args = (len(dataset), batch_size, seed, start_epoch, skip, rank, world, groups, weights)
    loader = torch.utils.data.DataLoader(
        SeededSamples(dataset), batch_sampler=_ScheduleSampler(*args), num_workers=workers, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), prefetch_factor=4 if workers else None,
        # own generator: creating the loader's iterator must not draw from the checkpointed global RNG
        generator=torch.Generator().manual_seed(seed))
    for (epoch, last, _), batch in zip(batch_schedule(*args), loader):
        yield epoch, last, batch
