"""SPLoPA adapter files: what a task needs on top of the shared base model, and rebuilding from them.

An adapter file (safetensors) holds, for every masked layer, the prototypes (once where shared),
the position weights of the blocks that survive the mask, the bias and the block mask as bits
(plus the gate values of kept blocks where masks are not binary, as L0's are), the encoder's LayerNorm
weights and biases (SPLoPA trains them, as the original code did) and the QA head.
Its metadata names the base model and a fingerprint of the base weights the adapter was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..adapters.splopa import SplopaLinear
from ..adapters.splopa.layer import block_update
from ..errors import SpaTuneError
from ..model.counting import is_added_parameter
from ..model.fingerprint import weights_fingerprint
from ..model.inject import encoder_linears, encoder_of, replace_module
from ..pruning.binarizers import apply_block_mask
from ..pruning.control import eval_block_masks, masked_layers
from .fold import plain_linear

FORMAT = "spa-tune-splopa-adapter/1"
HEAD = "qa_outputs"
LAYERNORM = "layernorm."  # prefix of the stored encoder LayerNorm tensors


@dataclass
class AdapterSize:
    """What an adapter file holds, counted."""

    prototypes: int
    position_weights: int
    kept_blocks: int
    biases: int
    layernorms: int
    head: int
    gates: int
    mask_bytes: int
    file_bytes: int

    @property
    def learned(self) -> int:
        """Prototypes plus position weights of surviving blocks (the trial's ``learned_params``)."""
        return self.prototypes + self.position_weights

    @property
    def floats(self) -> int:
        """Every stored float32 value."""
        return self.learned + self.biases + self.layernorms + self.head + self.gates

    @property
    def header_bytes(self) -> int:
        """The safetensors header: the file minus its tensor data."""
        return self.file_bytes - 4 * self.floats - self.mask_bytes

    def describe(self) -> str:
        """Several lines accounting for every byte of the file."""
        return "\n".join([
            f"  learned parameters: {self.learned:,} = prototypes {self.prototypes:,} + position weights "
            f"{self.position_weights:,} ({self.kept_blocks:,} surviving blocks)",
            f"  also stored: biases {self.biases:,}, encoder LayerNorms {self.layernorms:,}, QA head {self.head:,}"
            + (f", gates of kept blocks {self.gates:,}" if self.gates else "")
            + f", block masks {self.mask_bytes:,} bytes of bits",
            f"  file: {self.file_bytes:,} bytes = 4 x {self.floats:,} float32 values + {self.mask_bytes:,} mask bytes "
            f"+ {self.header_bytes:,} header bytes",
        ])


def encoder_layernorm_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the encoder's LayerNorm weights and biases (SPLoPA may train them)."""
    prefix = next(name for name, module in model.named_modules() if module is encoder_of(model))
    return [
        f"{prefix}.{name}.{kind}"
        for name, module in encoder_of(model).named_modules() if isinstance(module, nn.LayerNorm)
        for kind in ("weight", "bias")
    ]


def frozen_keys(state: dict[str, torch.Tensor], linear_names: set[str], layernorms: set[str]) -> list[str]:
    """Keys of the base weights SPLoPA keeps frozen: all but the head, encoder biases and LayerNorms, and adapter parts."""
    return sorted(
        key for key in state
        if not key.startswith(f"{HEAD}.") and not is_added_parameter(key) and key not in layernorms
        and not (key.endswith(".bias") and key[: -len(".bias")] in linear_names)
    )


def base_fingerprint(model: nn.Module) -> str:
    """SHA-256 over the frozen base weights (names and values) of a plain or SPLoPA model."""
    names = {name for name, _ in masked_layers(model)} or {name for name, _ in encoder_linears(model)}
    state = model.state_dict()
    return weights_fingerprint(state, frozen_keys(state, names, set(encoder_layernorm_keys(model))))


@torch.no_grad()
def adapter_tensors(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of a trained SPLoPA model's adapter (masks at their set threshold)."""
    layers = masked_layers(model)
    if not layers or not all(isinstance(layer, SplopaLinear) for _, layer in layers):
        raise SpaTuneError("--adapter-only: only SPLoPA trials (method: splopa) have an adapter to export")
    masks = eval_block_masks(model)
    tensors: dict[str, torch.Tensor] = {}
    prototype_keys: dict[int, str] = {}
    layer_meta = {}
    for name, layer in layers:
        mask = masks[name].reshape(-1)
        keep = mask > 0
        key = prototype_keys.setdefault(id(layer.prototypes), f"prototypes.{len(prototype_keys)}")
        if f"{key}.left" not in tensors:
            tensors[f"{key}.left"] = layer.prototypes.left.detach().clone()
            tensors[f"{key}.right"] = layer.prototypes.right.detach().clone()
        positions = layer.position_weights.reshape(layer.prototypes.num_prototypes, -1)
        tensors[f"{name}.position_weights"] = positions[:, keep].contiguous().clone()
        tensors[f"{name}.bias"] = layer.bias.detach().clone()
        tensors[f"{name}.mask_bits"] = torch.from_numpy(np.packbits(keep.cpu().numpy()))
        if not bool(((mask == 0) | (mask == 1)).all()):
            tensors[f"{name}.gates"] = mask[keep].contiguous().clone()
        layer_meta[name] = {"shape": list(layer.weight.shape), "grid": list(layer.block_grid), "prototypes": key}
    state = model.state_dict()
    for key in encoder_layernorm_keys(model):  # trained by default (splopa_train_layernorm), always stored
        tensors[f"{LAYERNORM}{key}"] = state[key].detach().clone()
    head = model.get_submodule(HEAD)
    tensors[f"{HEAD}.weight"], tensors[f"{HEAD}.bias"] = head.weight.detach().clone(), head.bias.detach().clone()
    first = layers[0][1]
    meta = {
        "format": FORMAT,
        "block": [first.spec.block_rows, first.spec.block_cols],
        "num_prototypes": first.prototypes.num_prototypes,
        "layers": layer_meta,
    }
    return tensors, meta


def save_adapter(model: nn.Module, base_model: str, path: Path, trial: dict) -> AdapterSize:
    """Write the adapter of a trained SPLoPA ``model`` to ``path``; return its accounting."""
    tensors, meta = adapter_tensors(model)
    meta.update(base_model=base_model, base_fingerprint=base_fingerprint(model), trial=trial)
    save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path), metadata={"spa_tune": json.dumps(meta)})
    return adapter_size(path)


def read_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of an adapter file; a file that is not one is a one-line error."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("spa_tune", "{}"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise SpaTuneError(f"{path}: not a readable adapter file ({str(err).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise SpaTuneError(f"{path}: not a spa-tune SPLoPA adapter (format {meta.get('format')!r}, expected {FORMAT!r})")
    return tensors, meta


def adapter_size(path: Path, tensors: dict[str, torch.Tensor] | None = None) -> AdapterSize:
    """Count what the adapter file at ``path`` holds (``tensors``: its tensors, if already read)."""
    if tensors is None:
        tensors, _ = read_adapter(path)

    def total(suffix: str) -> int:
        return sum(t.numel() for k, t in tensors.items() if k.endswith(suffix))

    return AdapterSize(
        prototypes=sum(t.numel() for k, t in tensors.items() if k.startswith("prototypes.")),
        position_weights=total(".position_weights"),
        kept_blocks=sum(t.shape[1] for k, t in tensors.items() if k.endswith(".position_weights")),
        biases=sum(
            t.numel() for k, t in tensors.items() if k.endswith(".bias") and not k.startswith((f"{HEAD}.", LAYERNORM))
        ),
        layernorms=sum(t.numel() for k, t in tensors.items() if k.startswith(LAYERNORM)),
        head=sum(t.numel() for k, t in tensors.items() if k.startswith(f"{HEAD}.")),
        gates=total(".gates"),
        mask_bytes=total(".mask_bits"),
        file_bytes=path.stat().st_size,
    )


def layer_mask(tensors: dict[str, torch.Tensor], name: str, grid: list[int]) -> torch.Tensor:
    """A layer's block mask (grid shape) from its bits, with gate values where stored."""
    cells = grid[0] * grid[1]
    keep = torch.from_numpy(np.unpackbits(tensors[f"{name}.mask_bits"].numpy())[:cells].astype(bool))
    mask = torch.zeros(cells)
    mask[keep] = tensors[f"{name}.gates"] if f"{name}.gates" in tensors else 1.0
    return mask.reshape(grid)


@torch.no_grad()
def apply_adapter(base: nn.Module, tensors: dict[str, torch.Tensor], meta: dict, source: str) -> nn.Module:
    """Fold the adapter into ``base`` (a plain QA model of the adapter's base); returns ``base``."""
    found = base_fingerprint(base)
    if found != meta["base_fingerprint"]:
        raise SpaTuneError(
            f"{source}: the base model's weights differ from those the adapter was trained on "
            f"({meta['base_model']!r}, fingerprint {meta['base_fingerprint'][:12]}, this base {found[:12]})"
        )
    rows, cols = meta["block"]
    for name, info in meta["layers"].items():
        linear = base.get_submodule(name)
        mask = layer_mask(tensors, name, info["grid"])
        positions = torch.zeros(meta["num_prototypes"], info["grid"][0] * info["grid"][1])
        positions[:, mask.reshape(-1) > 0] = tensors[f"{name}.position_weights"]
        prototypes = torch.bmm(tensors[f"{info['prototypes']}.left"], tensors[f"{info['prototypes']}.right"])
        update = block_update(positions.reshape(-1, *info["grid"]), prototypes.reshape(len(prototypes), -1), rows, cols)
        weight = apply_block_mask(linear.weight + update, mask, rows, cols)
        replace_module(base, name, plain_linear(weight, tensors[f"{name}.bias"]))
    state = base.state_dict()
    for key in (k for k in tensors if k.startswith(LAYERNORM)):
        state[key.removeprefix(LAYERNORM)].copy_(tensors[key])
    head = base.get_submodule(HEAD)
    head.weight.copy_(tensors[f"{HEAD}.weight"])
    head.bias.copy_(tensors[f"{HEAD}.bias"])
    return base.requires_grad_(False).eval()
