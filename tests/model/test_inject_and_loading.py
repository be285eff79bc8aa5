import os

import pytest
import torch

from spa_tune.config import validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.model.inject import prepare_model
from spa_tune.model.loading import load_qa_model, resolve_model
from spa_tune.pruning import binarizers
from spa_tune.pruning.control import apply_threshold, masked_layers
from spa_tune.pruning.masked_linear import BlockMaskedLinear, MaskSpec
from tests.conftest import tiny_bert

SIX = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
       "intermediate.dense", "output.dense")


@pytest.mark.parametrize("method", ["fine-pruning", "splopa"])
def test_six_linears_per_layer_replaced_and_unpruned_model_unchanged(method):
    reference = tiny_bert(seed=3).eval()
    model = prepare_model(tiny_bert(seed=3), validate_trial_config(dict(method=method, num_splopa_prototypes=4,
                                                                        splopa_init_range=0.0))).eval()
    names = [name for name, _ in masked_layers(model)]
    assert names == [f"bert.encoder.layer.{i}.{suffix}" for i in range(2) for suffix in SIX]
    assert type(model.qa_outputs) is torch.nn.Linear  # the head is not masked
    apply_threshold(model, 1.0)  # keep every block; SPLoPA starts with a zero update (C = 0)
    ids = torch.randint(1000, 3000, (2, 20))
    with torch.no_grad():
        expected, got = reference(input_ids=ids), model(input_ids=ids)
    assert torch.allclose(expected.start_logits, got.start_logits, atol=1e-5)


def test_unstructured_1x1_blocks_keep_exact_fraction_of_weights():
    layer = BlockMaskedLinear(torch.nn.Linear(10, 10), MaskSpec("topK", "kaiming", 0.0, 1, 1))
    layer.threshold = 0.37
    assert layer.mask_scores.shape == (10, 10)
    assert int((layer.masked_weight() != 0).sum()) == 37
    assert binarizers.kept_count(100, 0.37) == 37


def test_minilm_resolves_to_site_packages_offline():
    path, offline = resolve_model("minilm")
    assert offline and os.path.isfile(os.path.join(path, "config.json")) and "site-packages" in path
    assert resolve_model("bert-base-uncased") == ("bert-base-uncased", False)  # hub name passed as is


def test_minilm_loads_with_new_qa_head_and_hub_flags_restored(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = load_qa_model("minilm")
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert model.qa_outputs.out_features == 2
    assert "HF_HUB_OFFLINE" not in os.environ


def test_local_folder_and_missing_folder(tiny_model_dir, tmp_path):
    assert load_qa_model(tiny_model_dir).config.hidden_size == 64
    with pytest.raises(SpaTuneError, match="no model folder"):
        load_qa_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpaTuneError, match="model: cannot load"):
        load_qa_model(str(tmp_path / "empty"))
