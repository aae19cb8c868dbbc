"""The classification evaluator agrees with scikit-learn on random predictions."""
import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score

from cauchy.metrics.cls import ClassificationEvaluator


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 301, 8
    labels = rng.integers(0, k, n)
    scores = torch.softmax(torch.tensor(rng.normal(size=(n, k))), 1).float()
    ev = ClassificationEvaluator(num_classes=k)
    for start in range(0, n, 64):  # several batches
        sl = slice(start, start + 64)
        ev.process({"label": torch.tensor(labels[sl])}, [{"scores": s} for s in scores[sl]])
    result = ev.evaluate()
    m = {**result.scalars, **result.tables}
    pred = scores.argmax(1).numpy()
    assert m["top1"] == pytest.approx((pred == labels).mean())
    assert m["top5"] == pytest.approx(top_k_accuracy_score(labels, scores.numpy(), k=5, labels=range(k)))
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=range(k), zero_division=0)
    assert [c["precision"] for c in m["per_class"].values()] == pytest.approx(p)
    assert [c["recall"] for c in m["per_class"].values()] == pytest.approx(r)
    assert [c["f1"] for c in m["per_class"].values()] == pytest.approx(f)
    assert m["mean_f1"] == pytest.approx(f.mean())
    assert m["confusion_matrix"] == confusion_matrix(labels, pred, labels=range(k)).tolist()
    assert m["count"] == n


def test_reset_and_few_classes():
    ev = ClassificationEvaluator(num_classes=3, class_names=["a", "b", "c"])
    ev.process({"label": torch.tensor([0, 2])}, [{"scores": torch.tensor([0.9, 0.1, 0.0])},
                                                   {"scores": torch.tensor([0.1, 0.8, 0.1])}])
    m = ev.evaluate()
    assert "top5" not in m.scalars and m.scalars["top1"] == 0.5 and set(m.tables["per_class"]) == {"a", "b", "c"}
    ev.reset()
    assert ev.evaluate().scalars["count"] == 0
