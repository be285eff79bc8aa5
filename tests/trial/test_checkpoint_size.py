"""Checkpoints sized to what a trial learns: no frozen base weight is stored, the base is checked by its
fingerprint on resume and export, and a checkpoint from another base is one line."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForQuestionAnswering

from spa_tune.config import validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.export.source import load_trained
from spa_tune.model.fingerprint import frozen_parameter_names
from spa_tune.trial import run_trial
from spa_tune.trial.checkpoint import STATE_FILE, read_state, restore_model
from spa_tune.trial.setup import build_trial

from .test_trial import FAST


def trial_config(model_dir, tmp_path, method, name):
    return dict(
        FAST, generated_train_questions=64, generated_eval_questions=16, model=model_dir, method=method,
        pruning_method="topK", final_threshold=0.5, num_splopa_prototypes=4, splopa_prototype_rank=2,
        max_steps=4, eval_every=2, keep_checkpoints=5, per_gpu_train_batch_size=8, output_dir=str(tmp_path / name),
    )


def checkpoints_of(config):
    found = []
    run_trial(config, report=lambda m, c: found.append(Path(c)))
    return found


def test_a_splopa_checkpoint_stores_what_learns_and_not_the_frozen_base(tiny_model_dir, tmp_path):
    splopa = checkpoints_of(trial_config(tiny_model_dir, tmp_path, "splopa", "splopa"))[-1]
    fp = checkpoints_of(trial_config(tiny_model_dir, tmp_path, "fine-pruning", "fp"))[-1]
    state = read_state(splopa)
    model = build_trial(validate_trial_config(trial_config(tiny_model_dir, tmp_path, "splopa", "probe"))).model
    frozen = frozen_parameter_names(model)
    assert frozen and state["base"]["frozen"] == frozen and len(state["base"]["fingerprint"]) == 64
    assert not set(frozen) & set(state["model"])
    learned = {name for name, p in model.named_parameters() if p.requires_grad}
    assert learned <= set(state["model"])
    # fine-pruning learns every weight but the embeddings (frozen, as in the original): all else is stored
    assert read_state(fp)["base"]["frozen"] and all(k.startswith("bert.embeddings.") for k in read_state(fp)["base"]["frozen"])
    ratio = (splopa / STATE_FILE).stat().st_size / (fp / STATE_FILE).stat().st_size
    print(f"tiny BERT: SPLoPA / fine-pruning checkpoint bytes = {ratio:.3f}")
    assert ratio < 0.5


def test_a_checkpoint_of_another_base_is_refused_in_one_line(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    config = trial_config(str(base), tmp_path, "splopa", "trial")
    first = checkpoints_of(config)[0]
    # the same name now holds other weights: a re-downloaded or retrained base
    model = AutoModelForQuestionAnswering.from_pretrained(base)
    with torch.no_grad():
        model.bert.encoder.layer[0].attention.self.query.weight.add_(0.01)
    model.save_pretrained(base)
    pattern = (rf"^{first / STATE_FILE}: written for base model '{base}' with frozen weights [0-9a-f]{{12}}, but this "
               r"base has [0-9a-f]{12}; resume and export need the base the trial was trained from$")
    with pytest.raises(SpaTuneError, match=pattern):
        run_trial(dict(config, output_dir=str(tmp_path / "resumed")), resume_from=first)
    with pytest.raises(SpaTuneError, match=pattern):
        load_trained(first)


def test_a_checkpoint_holding_the_whole_model_still_loads(tiny_model_dir, tmp_path):
    """Checkpoints written before they were sized to what learns held every tensor and no base record."""
    config = validate_trial_config(trial_config(tiny_model_dir, tmp_path, "splopa", "old"))
    model = build_trial(config).model
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.5)
    fresh = build_trial(config).model
    restore_model(fresh, {"model": model.state_dict()}, tmp_path / "old.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
