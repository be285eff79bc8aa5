import pytest

from spa_tune.config import load_trial_config, parse_overrides, validate_trial_config
from spa_tune.errors import SpaTuneError


def test_sheet_style_values_are_accepted():
    cfg = validate_trial_config(
        {"per_gpu_train_batch_size": 16.0, "learning_rate": "3e-5", "regularization": "null", "final_lambda": 400.0,
         "pruning_method": "sigmoied_threshold", "initial_threshold": 0.0, "final_threshold": 0.1}
    )
    assert cfg.per_gpu_train_batch_size == 16 and isinstance(cfg.per_gpu_train_batch_size, int)
    assert cfg.learning_rate == 3e-5 and cfg.regularization is None


@pytest.mark.parametrize(
    "values,message",
    [
        ({"learnin_rate": 1e-4}, "t.yaml: unknown key 'learnin_rate' (did you mean 'learning_rate'?)"),
        ({"learning_rate": -1}, "t.yaml: learning_rate: Input should be greater than 0 (got -1)"),
        ({"per_gpu_train_batch_size": "big"}, "t.yaml: per_gpu_train_batch_size: Input should be a valid integer"),
        ({"final_threshold": 1.5}, "t.yaml: final_threshold: 1.5 is outside [0, 1]"),
        ({"pruning_method": "magnitude", "initial_threshold": -0.1}, "t.yaml: initial_threshold: -0.1 is outside [0, 1]"),
        ({"method": "lora"}, "t.yaml: method: Input should be 'fine-pruning', 'splopa' or 'dense' (got 'lora')"),
        ({"pruning_method": "l0", "global_topk": True}, "t.yaml: global_topk: only topK and magnitude"),
    ],
)
def test_bad_values_give_one_line_errors(values, message):
    with pytest.raises(SpaTuneError) as err:
        validate_trial_config(values, "t.yaml")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_threshold_range_not_enforced_for_score_thresholds():
    cfg = validate_trial_config({"pruning_method": "threshold", "initial_threshold": -2.0, "final_threshold": 3.0})
    assert cfg.final_threshold == 3.0


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text("method: splopa\nlearning_rate: 3e-5\nnum_splopa_prototypes: 8\n")
    cfg = load_trial_config(path, ["num_splopa_prototypes=16", "shared_prototypes=true", "regularization=null"])
    assert (cfg.method, cfg.learning_rate, cfg.num_splopa_prototypes, cfg.shared_prototypes) == ("splopa", 3e-5, 16, True)
    assert parse_overrides(["teacher_name_or_path=some/model"]) == {"teacher_name_or_path": "some/model"}
    with pytest.raises(SpaTuneError, match="--set: expected key=value"):
        parse_overrides(["oops"])
    with pytest.raises(SpaTuneError, match=f"{tmp_path / 'nope.yaml'}: no such file"):
        load_trial_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [splopa\n")
    with pytest.raises(SpaTuneError, match="bad.yaml: line .* invalid YAML"):
        load_trial_config(bad)
