import math

import pytest

from cauchy.engine.lr import LRSchedule


def test_policies():
    assert LRSchedule("step", unit="epoch", total=10, step_size=3, gamma=0.5).factor(0, 7) == 0.25
    ms = LRSchedule("multistep", unit="iters", total=100, milestones=[10, 20], gamma=0.1)
    assert [ms.factor(i, 0) for i in (9, 10, 25)] == pytest.approx([1, 0.1, 0.01])
    cos = LRSchedule("cosine", unit="iters", total=100, min_factor=0.1)
    assert cos.factor(0, 0) == 1 and cos.factor(100, 0) == pytest.approx(0.1)
    assert cos.factor(50, 0) == pytest.approx(0.55)
    assert LRSchedule("poly", unit="iters", total=10, power=2).factor(5, 0) == pytest.approx(0.25)


def test_warmup_is_linear_and_multiplies_the_policy():
    s = LRSchedule("fixed", unit="iters", total=100, warm_iters=10, warm_start_factor=0.1)
    assert s.factor(0, 0) == pytest.approx(0.1) and s.factor(5, 0) == pytest.approx(0.55) and s.factor(10, 0) == 1


def test_plateau_decays_after_patience_and_round_trips():
    s = LRSchedule("plateau", unit="epoch", total=10, patience=1, plateau_factor=0.5)
    for metric in (0.5, 0.6, 0.6, 0.6):
        s.observe(metric)
    assert s.factor(0, 0) == 0.5
    t = LRSchedule("plateau", unit="epoch", total=10)
    t.load_state_dict(s.state_dict())
    assert t.factor(0, 0) == 0.5 and t.best == 0.6 and not math.isinf(t.best)
