"""The GPU check's scripts (bench/gpu_check.py, bench/gpu_check.sh), on the CPU with a tiny BERT."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from spa_tune.data.generate import write_generated_squad

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def gpu_check():
    """bench/gpu_check.py as a module (bench/ is no package); loading it changes nothing in spa_tune."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module  # its dataclass looks the module up while it is defined
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


def test_step_durations_end_at_the_next_step_or_evaluation():
    # steps start at 0, 1, 2; an evaluation runs from 3.5 to 10; steps at 10, 12; the last evaluation at 13
    durations = gpu_check().step_durations([0.0, 1.0, 2.0, 10.0, 12.0], [3.5, 13.0])
    assert durations == [1.0, 1.0, 1.5, 2.0, 1.0]


def test_step_statistics_leave_out_the_warm_up():
    stats = gpu_check().step_statistics([5.0, 0.01, 0.02, 0.03], warmup=1)
    assert stats["steps_timed"] == 3
    assert abs(stats["step_ms_median"] - 20.0) < 1e-9
    assert abs(stats["step_ms_mean"] - 20.0) < 1e-9
    assert abs(stats["steps_per_s"] - 50.0) < 1e-9
    assert stats["first_step_ms"] == 5000.0


def test_summary_prints_the_ratios_of_the_second_run(tmp_path, capsys):
    row = dict(device="cuda", steps=100, step_ms_mean=41.0, steps_per_s=24.4, peak_gpu_mib_train=3000.0,
               peak_rss_mib=2000.0, eval_s=3.0, em=40.0)
    lines = [dict(row, label="fp32", step_ms_median=40.0, peak_gpu_mib=4000.0, f1=50.0),
             dict(row, label="bf16", step_ms_median=20.0, peak_gpu_mib=3000.0, f1=49.5)]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert gpu_check().cmd_summary(argparse.Namespace(results=str(results))) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("fp32 | cuda | 100 | 40.0 |")
    assert out[-1] == "bf16 / fp32: step time 0.500, peak GPU memory 0.750, F1 -0.5 points"


def test_env_shows_fp32_weights_also_for_a_model_saved_in_half_precision(tiny_model_dir, tmp_path, capsys):
    """The packed MiniLM is stored in fp16; spa-tune's loader gives fp32 weights, which the check prints."""
    module = gpu_check()
    assert module.cmd_env(argparse.Namespace(model_dir=tiny_model_dir)) == 0
    assert "weights load as torch.float32" in capsys.readouterr().out
    from spa_tune.model.loading import load_qa_model

    half = tmp_path / "half"
    load_qa_model(tiny_model_dir).half().save_pretrained(half)  # config dtype float16
    assert module.cmd_env(argparse.Namespace(model_dir=str(half))) == 0
    assert "weights load as torch.float32" in capsys.readouterr().out


def test_a_timed_trial_reports_steps_memory_and_f1(tiny_model_dir, tmp_path):
    train, dev = write_generated_squad(tmp_path / "data", 64, 16, seed=0)
    results = tmp_path / "results.jsonl"
    settings = dict(model=tiny_model_dir, train_file=train, eval_file=dev, max_seq_length=64, doc_stride=16,
                    max_query_length=32, per_gpu_train_batch_size=8, max_steps=6, eval_every=3, device="cpu",
                    precision="fp32", output_dir=tmp_path / "trial", keep_checkpoints=1)
    train_args = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(SCRIPT), "trial", "--label", "fp32", "--results", str(results),
                           "--warmup", "1", "--", *train_args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    row = json.loads(results.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == row
    assert (row["label"], row["device"], row["steps"], row["steps_timed"]) == ("fp32", "cpu", 6, 5)
    assert 0 < row["step_ms_median"] <= row["wall_s"] * 1000
    assert row["eval_s"] > 0 and row["peak_rss_mib"] > 0
    assert row["peak_gpu_mib"] is None and row["peak_gpu_mib_train"] is None
    metrics = [json.loads(line) for line in (tmp_path / "trial" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6]  # two evaluations, both left out of the step times
    assert row["f1"] == metrics[-1]["f1"] and row["em"] == metrics[-1]["em"]


def test_a_failed_trial_is_its_exit_code(tiny_model_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(SCRIPT), "trial", "--label", "x", "--results", str(tmp_path / "r"),
                           "--", "--set", "learning_rate=-1"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert "spa-tune: error: --set: learning_rate" in done.stderr
    assert not (tmp_path / "r").exists()


def test_the_check_names_a_missing_pack(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--cpu-smoke"], capture_output=True, text=True,
                          env=dict(os.environ, PACK_DIR=str(tmp_path / "nothing")), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"gpu_check: {tmp_path / 'nothing'}/whl missing: run bench/gpu_pack.sh first"

