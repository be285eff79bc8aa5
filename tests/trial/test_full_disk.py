"""A checkpoint write that runs out of space leaves no half folder, and the previous checkpoint loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in its own process: the file-size limit and the ignored SIGXFSZ must not touch the test session.
SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    import torch
    sys.path.insert(0, sys.argv[2])
    from tests.conftest import tiny_bert
    from spa_tune.trial.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
    from spa_tune.export.source import newest_checkpoint

    root = Path(sys.argv[1])
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    save_checkpoint(root / "checkpoint_000010", model, optimizer, scheduler, 10, {"seed": 1})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        save_checkpoint(root / "checkpoint_000020", model, optimizer, scheduler, 20, {"seed": 1})
    except (OSError, RuntimeError) as err:  # torch reports a short write as RuntimeError
        print("write failed:", type(err).__name__)
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint_000010"], sorted(root.iterdir())
    assert newest_checkpoint(root) == root / "checkpoint_000010"
    assert load_checkpoint(root / "checkpoint_000010", model, optimizer, scheduler)["step"] == 10
    print("previous checkpoint loads")
""")


def test_a_checkpoint_write_on_a_full_disk_keeps_the_last_good_checkpoint(tmp_path):
    import spa_tune

    project = str(__import__("pathlib").Path(spa_tune.__file__).parents[1])
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), project], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "write failed:" in done.stdout and "previous checkpoint loads" in done.stdout
