"""The training schedule: DDP slices, one augmentation seed per sample, aspect-ratio grouping."""
import torch

from pipeline.schedule import aspect_groups, batch_schedule, batches, epoch_batches


def test_each_process_gets_its_own_half_of_every_global_batch():
    data = list(range(8))

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i], {"i": i}

    def take(rank, world, bs):
        stream = batches(DS(), bs, seed=3, workers=0, start_epoch=0, rank=rank, world=world)
        return [list(next(stream)[2][0]) for _ in range(2)]

    r0, r1, single = take(0, 2, 2), take(1, 2, 2), take(0, 1, 4)
    for k in range(2):
        assert sorted(r0[k] + r1[k]) == sorted(single[k])  # together: the one-process global batch
        assert not set(r0[k]) & set(r1[k])


def test_every_sample_and_every_process_has_its_own_augmentation_seed():
    def seeds(rank, world, epochs=3):
        out = []
        for epoch, last, keyed in batch_schedule(6, 1, seed=0, start_epoch=0, rank=rank, world=world):
            out += keyed
            if last and epoch == epochs - 1:
                return out
    r0, r1 = seeds(0, 2), seeds(1, 2)
    all_seeds = [s for _, s in r0 + r1]
    assert len(set(all_seeds)) == len(all_seeds)  # no two draws share a seed, across processes and epochs
    # the same image in two epochs is augmented differently
    assert len({s for i, s in r0 if i == r0[0][0]}) > 1
    # a resumed schedule (skip) continues with the very same seeds
    full = list(zip(range(5), batch_schedule(6, 2, seed=4, start_epoch=0)))
    resumed = list(zip(range(3), batch_schedule(6, 2, seed=4, start_epoch=0, skip=2)))
    assert [b for _, b in full[2:]] == [b for _, b in resumed]


def test_aspect_ratio_groups_fill_batches_from_one_group():
    images = [{"width": 640, "height": 480}] * 7 + [{"width": 480, "height": 640}] * 5
    groups = aspect_groups(images, 3)
    assert len(set(groups[:7])) == 1 and len(set(groups[7:])) == 1 and groups[0] != groups[-1]
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0)).tolist()
    chunks = epoch_batches(order, 2, drop_last=False, groups=groups)
    assert sorted(i for c in chunks for i in c) == list(range(12))  # every image once per epoch
    mixed = [c for c in chunks if len({groups[i] for i in c}) > 1]
    assert len(mixed) <= 1  # only the leftovers of the two groups may share a batch
    plain = epoch_batches(order, 2, drop_last=False)
    assert sum(len({groups[i] for i in c}) > 1 for c in plain) > len(mixed)  # grouping changed something


def test_weighted_schedule_gives_each_source_its_share_and_resumes_exactly():
    """A mixed set (6 synthetic, 2 real images, real share 0.25 by weight per sample): over 500 epochs of
    8 draws the real share is 0.25 within 5 standard deviations (sqrt(.25 * .75 / 4000) = 0.0068), every
    real image is drawn, and skipping batches continues the same sequence, as a resume does."""
    from pipeline.data import MixedInstances

    class Part:
        def __init__(self, n):
            self.images = [{"width": 4, "height": 3}] * n

        def __len__(self):
            return len(self.images)

    mixed = MixedInstances(Part(6), Part(2), 0.25)
    weights = mixed.weights()
    assert len(mixed) == 8 and abs(sum(weights[6:]) - 0.25) < 1e-12
    drawn = []
    for epoch, last, keyed in batch_schedule(8, 2, seed=1, start_epoch=0, weights=weights):
        drawn += [i for i, _ in keyed]
        if last and epoch == 499:
            break
    share = sum(i >= 6 for i in drawn) / len(drawn)
    assert abs(share - 0.25) < 5 * 0.0068, share
    assert {6, 7} <= set(drawn) and set(range(6)) <= set(drawn)
    full = [k for _, (_, _, k) in zip(range(6), batch_schedule(8, 2, seed=1, start_epoch=0, weights=weights))]
    resumed = [k for _, (_, _, k) in zip(range(3), batch_schedule(8, 2, seed=1, start_epoch=0, skip=3, weights=weights))]
    assert resumed == full[3:]
