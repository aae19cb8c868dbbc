"""The training sampler split across ranks: each step's ranks together take one process's batch of
B x N, in order, restartable at any global batch; evaluation shards cover a split once, in order."""
from __future__ import annotations

import pytest

from cauchy.distributed import shard
from cauchy.engine.trainer import EpochBatchSampler


def batches(size: int, batch: int, ranks: int, rank: int, *, epoch: int = 1, start: int = 0,
            drop_last: bool = False) -> list[list[tuple[int, int, int]]]:
    sampler = EpochBatchSampler(size, batch, shuffle=True, drop_last=drop_last, seed=7, rank=rank, world_size=ranks)
    sampler.set_epoch(epoch, start)
    return [[tuple(key) for key in keys] for keys in sampler]


@pytest.mark.parametrize("size, batch, ranks", [(48, 4, 2), (50, 4, 3), (23, 5, 2), (9, 4, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_together_take_the_batches_of_one_process(size, batch, ranks, drop_last) -> None:
    one = batches(size, batch * ranks, 1, 0, drop_last=drop_last)
    split = [batches(size, batch, ranks, r, drop_last=drop_last) for r in range(ranks)]
    rest = size % (batch * ranks)
    if 0 < rest < ranks and not drop_last:  # a last global batch some rank would get nothing of is dropped
        one = one[:-1]
    assert all(len(mine) == len(one) == len(EpochBatchSampler(size, batch, shuffle=True, drop_last=drop_last,
                                                               rank=r, world_size=ranks))
               for r, mine in enumerate(split))
    for step, whole in enumerate(one):
        assert [key for r in range(ranks) for key in split[r][step]] == whole
        assert all(split[r][step] for r in range(ranks))


def test_a_resumed_rank_restarts_at_the_same_global_batch() -> None:
    for rank in range(3):
        assert batches(50, 4, 3, rank, start=2) == batches(50, 4, 3, rank)[2:]


@pytest.mark.parametrize("size, ranks", [(10, 3), (2, 4), (360, 2), (0, 2)])
def test_evaluation_shards_cover_the_split_once_in_order(size, ranks) -> None:
    assert [i for r in range(ranks) for i in shard(size, r, ranks)] == list(range(size))
