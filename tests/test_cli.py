"""``spa-tune train``: one-line errors with exit code 2, and a real run printing JSON last."""

import json
import os
import subprocess
import sys
from pathlib import Path

from spa_tune.cli import main
from spa_tune.data.generate import write_generated_squad

TINY = ["max_seq_length=64", "doc_stride=16", "max_query_length=32", "generated_train_questions=64", "generated_eval_questions=16",
        "max_steps=2", "per_gpu_train_batch_size=8"]


def run_main(capsys, args):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(capsys, args, *fragments):
    code, _, err = run_main(capsys, args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spa-tune: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err


def test_unknown_key_with_suggestion(capsys, tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text("method: splopa\nnum_splopa_prototype: 8\n")
    assert_one_line_error(capsys, ["train", "--config", str(path)], str(path), "'num_splopa_prototype'",
                          "did you mean 'num_splopa_prototypes'")


def test_wrong_type_and_range(capsys):
    assert_one_line_error(capsys, ["train", "--set", "learning_rate=-0.1"], "learning_rate", "greater than 0")
    assert_one_line_error(capsys, ["train", "--set", "num_train_epochs=many"], "num_train_epochs")
    assert_one_line_error(capsys, ["train", "--set", "method=prune"], "method", "'prune'")


def test_block_shape_names_layer(capsys, tiny_model_dir, tmp_path):
    args = ["train", "--quiet", "--set", f"model={tiny_model_dir}", "--set", "dataset=generated",
            "--set", f"output_dir={tmp_path}", "--set", "mask_block_rows=48"] + [a for t in TINY for a in ("--set", t)]
    assert_one_line_error(capsys, args, "block 48x32 does not divide layer bert.encoder.layer.0.attention.self.query",
                          "weight 64x64")


def test_unknown_model(capsys, tmp_path):
    assert_one_line_error(capsys, ["train", "--set", f"model={tmp_path}/no-such-model", "--set", f"output_dir={tmp_path}/out"],
                          "--set: model: no model folder at", "no-such-model")
    config = tmp_path / "trial.yaml"
    config.write_text(f"model: ./models/bert\noutput_dir: {tmp_path / 'out'}\n")
    assert_one_line_error(capsys, ["train", "--config", str(config)], f"{config}: model: no model folder at './models/bert'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial.yaml"]  # no output folder either


def test_missing_and_malformed_data(capsys, tiny_model_dir, tmp_path):
    train, dev = write_generated_squad(tmp_path / "data", 20, 5)
    base = ["train", "--quiet", "--set", f"model={tiny_model_dir}", "--set", f"output_dir={tmp_path / 'out'}"]
    base += [a for t in TINY for a in ("--set", t)]
    assert_one_line_error(capsys, base + ["--set", f"train_file={tmp_path}/none.json", "--set", f"eval_file={dev}"],
                          "none.json")
    data = json.loads(dev.read_text())
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    qa["answers"][0]["answer_start"] += 3
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert_one_line_error(capsys, base + ["--set", f"train_file={train}", "--set", f"eval_file={broken}"],
                          "--set: eval_file: ", "broken.json", f"example {qa['id']}")
    assert not (tmp_path / "out").exists()  # checked before the trial's output folder is made


def test_console_script_prints_final_metrics_as_last_line(tiny_model_dir, tmp_path):
    script = Path(sys.executable).with_name("spa-tune")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "spa_tune.cli"]
    config = tmp_path / "trial.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndataset: generated\noutput_dir: {tmp_path / 'run'}\n"
                      + "".join(t.replace("=", ": ") + "\n" for t in TINY))
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run(cmd + ["train", "--config", str(config), "--set", "method=splopa"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # stdout holds the metrics alone
    metrics = json.loads(lines[-1])
    for key in ("step", "epoch", "loss", "threshold", "em", "f1", "remaining_pct", "learned_params", "learned_pct",
                "output_dir", "predictions_file"):
        assert key in metrics, key
    assert metrics["step"] == 2 and 0 <= metrics["f1"] <= 100 and metrics["learned_pct"] < 100
    assert "layers" not in metrics  # per-layer counts only with --per-layer
    assert "train: 100%" in result.stderr and "2/2" in result.stderr  # the progress bar goes to stderr
