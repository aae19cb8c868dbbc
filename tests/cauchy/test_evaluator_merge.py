"""A distributed evaluation in one process: each "rank" evaluator processes its contiguous share, their
pickled ``state()`` s are merged in rank order, and the figures equal one evaluator fed everything."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from cauchy.metrics.base import CompositeEvaluator, Evaluator
from cauchy.metrics.cls import ClassificationEvaluator
from cauchy.metrics.det import COCOEvaluator, VOCEvaluator
from cauchy.metrics.seg import SegmentationEvaluator


def cls_batches(gen: np.random.Generator) -> list[tuple[dict, list[dict]]]:
    out = []
    for _ in range(5):
        labels = gen.integers(0, 6, 7)
        out.append(({"label": torch.tensor(labels)}, [{"scores": torch.tensor(s)} for s in gen.random((7, 6))]))
    return out


def seg_batches(gen: np.random.Generator) -> list[tuple[dict, list[dict]]]:
    return [({"orig_mask": [torch.from_numpy(gen.integers(0, 4, (9, 11)).astype(np.uint8)) for _ in range(3)]},
             [{"mask": torch.from_numpy(gen.integers(0, 4, (9, 11)))} for _ in range(3)]) for _ in range(4)]


def det_batches(gen: np.random.Generator) -> list[tuple[dict, list[dict]]]:
    def boxes(n: int) -> np.ndarray:
        xy = gen.random((n, 2)) * 80
        return np.concatenate([xy, xy + 10 + gen.random((n, 2)) * 30], axis=1)

    out, image_id = [], 0
    for _ in range(4):
        truths, preds = [], []
        for _ in range(2):
            gt = boxes(3)
            truths.append({"boxes": gt, "labels": gen.integers(0, 2, 3), "ignore": np.zeros(3, dtype=bool),
                           "areas": (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])})
            found = np.concatenate([gt + gen.normal(0, 3, gt.shape), boxes(2)])
            preds.append({"boxes": torch.tensor(found), "scores": torch.tensor(gen.random(5)),
                          "labels": torch.tensor(gen.integers(0, 2, 5))})
        out.append(({"truth": truths, "orig_size": torch.tensor([[128, 128]] * 2), "image_id": [image_id, image_id + 1]},
                    preds))
        image_id += 2
    return out


CASES = {
    "cls": (lambda: ClassificationEvaluator(6, topk=(1, 3)), cls_batches),
    "seg": (lambda: SegmentationEvaluator(4), seg_batches),
    "det": (lambda: CompositeEvaluator({"coco": COCOEvaluator(2), "voc": VOCEvaluator(2)}), det_batches),
}


def fed(evaluator: Evaluator, batches: list[tuple[dict, list[dict]]]) -> Evaluator:
    evaluator.reset()
    for batch, predictions in batches:
        evaluator.process(batch, predictions)
    return evaluator


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("ranks", [2, 3])
def test_merged_rank_states_evaluate_as_one_evaluator(name: str, ranks: int) -> None:
    make, batches_of = CASES[name]
    batches = batches_of(np.random.default_rng(ranks))
    whole = fed(make(), batches).evaluate()
    shares = np.array_split(np.arange(len(batches)), ranks)
    states = [pickle.loads(pickle.dumps(fed(make(), [batches[i] for i in share]).state())) for share in shares]
    merged = make()
    merged.merge(states)
    result = merged.evaluate()
    assert result.scalars == pytest.approx(whole.scalars, abs=1e-12)
    assert result.tables.keys() == whole.tables.keys()
