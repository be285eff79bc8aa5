import math

import pytest
import torch

from spa_tune.config import validate_trial_config
from spa_tune.model.inject import prepare_model
from spa_tune.trial.losses import combine_losses, distillation_loss
from spa_tune.trial.optim import build_optimizer, parameter_groups
from tests.conftest import tiny_bert


def test_distillation_loss_is_temperature_scaled_kl_mean_of_start_and_end():
    s_start, s_end = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[0.0, 0.0, 3.0]])
    t_start, t_end = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[0.5, 0.5, 1.0]])
    temperature = 2.0

    def kl(student, teacher):
        p = torch.softmax(teacher / temperature, -1)
        log_q = torch.log_softmax(student / temperature, -1)
        return float((p * (torch.log(p) - log_q)).sum()) * temperature**2

    expected = (kl(s_start, t_start) + kl(s_end, t_end)) / 2
    assert distillation_loss(s_start, s_end, t_start, t_end, temperature).item() == pytest.approx(expected, rel=1e-5)
    combined = combine_losses(torch.tensor(2.0), torch.tensor(4.0), alpha_ce=0.25, alpha_distil=0.75,
                              reg=torch.tensor(0.5), lam=3.0)
    assert combined.item() == pytest.approx(0.75 * 4 + 0.25 * 2 + 1.5)


def test_parameter_groups_and_learning_rates():
    cfg = validate_trial_config(dict(method="splopa", num_splopa_prototypes=4, learning_rate=3e-5,
                                     mask_scores_learning_rate=1e-2, adapter_learning_rate=1e-3, weight_decay=0.01,
                                     warmup_steps=10))
    model = prepare_model(tiny_bert(), cfg)
    groups = {g["name"]: g for g in parameter_groups(model, cfg)}
    assert groups["mask_scores"]["lr"] == 1e-2 and len(groups["mask_scores"]["params"]) == 12
    assert groups["position_weights"]["lr"] == 1e-3 and len(groups["position_weights"]["params"]) == 12
    assert groups["decay"]["lr"] == 3e-5 and groups["decay"]["weight_decay"] == 0.01
    assert groups["no_decay"]["weight_decay"] == 0.0  # biases (masked layers, head) and the encoder's LayerNorms
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") or ".LayerNorm." in names[id(p)] for p in groups["no_decay"]["params"])
    assert sum(".LayerNorm." in names[id(p)] for p in groups["no_decay"]["params"]) == 8  # 2 layers x 2 norms x 2
    optimizer, scheduler = build_optimizer(model, cfg, total_steps=110)
    lrs = []
    for _ in range(110):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0 and lrs[5] == pytest.approx(1e-2 * 0.5) and lrs[10] == pytest.approx(1e-2)
    assert lrs[60] == pytest.approx(1e-2 * 0.5) and math.isclose(scheduler.get_last_lr()[0], 0.0, abs_tol=1e-12)


def test_fine_pruning_freezes_embeddings_only():
    cfg = validate_trial_config(dict(method="fine-pruning"))
    model = prepare_model(tiny_bert(), cfg)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("bert.embeddings") for n in frozen)
