import math

import pytest
import torch

from spa_tune.pruning.regularization import regularization, score_penalty
from spa_tune.pruning.schedule import lambda_at, threshold_at

# T = 100 steps, warmup_steps = 10, initial_warmup = 1, final_warmup = 2 -> t_i = 10, t_f = 20.
ARGS = dict(total_steps=100, warmup_steps=10, initial_threshold=1.0, final_threshold=0.1, initial_warmup=1, final_warmup=2)


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, 1.0),
        (10, 1.0),
        (11, 0.1 + 0.9 * (1 - 1 / 70) ** 3),
        (45, 0.1 + 0.9 * 0.5**3),
        (80, 0.1),  # c = 0 at t = T - t_f
        (81, 0.1),
        (100, 0.1),
    ],
)
def test_cubic_threshold_schedule(step, expected):
    assert threshold_at(step, **ARGS) == pytest.approx(expected, abs=1e-12)


def test_lambda_scales_with_threshold():
    assert lambda_at(0.55, 0.1, 400.0) == pytest.approx(400.0 * 5.5)
    assert lambda_at(0.1, 0.1, 400.0) == pytest.approx(400.0)


def test_l1_and_l0_penalties_follow_formulas():
    scores = torch.tensor([[0.0, 1.0], [-2.0, 3.0]])
    sig = [1 / (1 + math.exp(-x)) for x in (0.0, 1.0, -2.0, 3.0)]
    assert score_penalty(scores, "l1").item() == pytest.approx(sum(sig) / 4, rel=1e-6)
    shift = (2 / 3) * math.log(0.1 / 1.1)
    sig0 = [1 / (1 + math.exp(-(x - shift))) for x in (0.0, 1.0, -2.0, 3.0)]
    assert score_penalty(scores, "l0").item() == pytest.approx(sum(sig0) / 4, rel=1e-6)
    other = torch.zeros(3, 3)
    assert regularization([scores, other], "l1").item() == pytest.approx((sum(sig) / 4 + 0.5) / 2, rel=1e-6)
