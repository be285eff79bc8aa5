"""Prepare a QA model for a method by replacing its encoder's Linear modules in place (PEFT-style).

``fine-pruning`` replaces every encoder Linear with a ``BlockMaskedLinear`` and learns all
non-embedding weights; ``splopa`` replaces them with ``SplopaLinear`` and learns only adapters,
biases, mask scores, the encoder's LayerNorms and the QA head; ``dense`` leaves the model as it is (plain fine-tuning).
"""

from __future__ import annotations

from torch import nn

from ..adapters.splopa import SplopaLinear, SplopaPrototypes
from ..errors import SpaTuneError
from ..pruning.masked_linear import BlockMaskedLinear, MaskSpec
from ..pruning.structure import structured_layers

METHODS = ("fine-pruning", "splopa", "dense")


def encoder_of(model: nn.Module) -> nn.Module:
    """The transformer encoder of a BERT-family model (``model.<base>.encoder``)."""
    encoder = getattr(model.base_model, "encoder", None)
    if encoder is None:
        raise SpaTuneError(f"model: {type(model).__name__} has no encoder to prune")
    return encoder


def encoder_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Qualified names and modules of every plain ``nn.Linear`` in the encoder."""
    prefix = _qualified_prefix(model, encoder_of(model))
    return [
        (f"{prefix}{name}", module)
        for name, module in encoder_of(model).named_modules()
        if type(module) is nn.Linear
    ]


def check_block_shape(model: nn.Module, block_rows: int, block_cols: int) -> None:
    """Fail with a one-line error naming the first layer the block shape does not divide."""
    for name, linear in encoder_linears(model):
        rows, cols = linear.weight.shape
        if rows % block_rows or cols % block_cols:
            raise SpaTuneError(
                f"mask_block_rows/mask_block_cols: block {block_rows}x{block_cols} does not divide layer "
                f"{name} (weight {rows}x{cols})"
            )


def replace_module(root: nn.Module, qualified_name: str, new: nn.Module) -> None:
    """Put ``new`` in place of the submodule at ``qualified_name``."""
    parent_name, _, child = qualified_name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def inject_block_masks(model: nn.Module, spec: MaskSpec) -> None:
    """Replace every encoder Linear by a ``BlockMaskedLinear`` sharing its parameters."""
    check_block_shape(model, spec.block_rows, spec.block_cols)
    for name, linear in encoder_linears(model):
        replace_module(model, name, BlockMaskedLinear(linear, spec))


def inject_structured_masks(model: nn.Module, spec: MaskSpec) -> None:
    """Replace every encoder Linear by a ``BlockMaskedLinear`` whose blocks are heads and neurons."""
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    for name, layer in structured_layers(encoder_linears(model), spec, head_dim).items():
        replace_module(model, name, layer)


def inject_splopa(
    model: nn.Module,
    spec: MaskSpec,
    num_prototypes: int,
    rank: int,
    init_range: float,
    shared_prototypes: bool = False,
) -> None:
    """Replace every encoder Linear by a ``SplopaLinear``.

    With ``shared_prototypes`` layers of the same weight shape share one prototype module; the
    registry lives only for this call, so sharing never crosses models.
    """
    check_block_shape(model, spec.block_rows, spec.block_cols)
    shared: dict[tuple[int, int], SplopaPrototypes] = {}
    for name, linear in encoder_linears(model):
        shape = tuple(linear.weight.shape)
        prototypes = shared.get(shape) if shared_prototypes else None
        if prototypes is None:
            prototypes = SplopaPrototypes(num_prototypes, rank, spec.block_rows, spec.block_cols, init_range)
            prototypes.to(linear.weight.device)
            shared[shape] = prototypes
        replace_module(model, name, SplopaLinear(linear, spec, prototypes))


def set_trainable(model: nn.Module, method: str, splopa_layernorm: bool = True) -> None:
    """Freeze what the method does not learn.

    fine-pruning: everything but the embeddings; splopa: adapters, masked-layer biases, mask
    scores, the QA head and (``splopa_layernorm``, as the original code) the encoder's LayerNorms;
    dense: everything.
    """
    if method == "dense":
        model.requires_grad_(True)
        return
    if method == "fine-pruning":
        model.requires_grad_(True)
        model.base_model.embeddings.requires_grad_(False)
        return
    if method == "splopa":
        model.requires_grad_(False)
        for module in model.modules():
            if isinstance(module, SplopaLinear):
                for param in (module.position_weights, module.bias, module.mask_scores):
                    if param is not None:
                        param.requires_grad_(True)
            elif isinstance(module, SplopaPrototypes):
                module.requires_grad_(True)
        if splopa_layernorm:
            for module in encoder_of(model).modules():
                if isinstance(module, nn.LayerNorm):
                    module.requires_grad_(True)
        _head(model).requires_grad_(True)
        return
    raise SpaTuneError(f"method: unknown method {method!r} (expected one of {', '.join(METHODS)})")


def prepare_model(model: nn.Module, cfg) -> nn.Module:
    """Inject the layers the trial config asks for and set what is trainable."""
    spec = MaskSpec(
        pruning_method=cfg.pruning_method,
        mask_init=cfg.mask_init,
        mask_scale=cfg.mask_scale,
        block_rows=cfg.mask_block_rows,
        block_cols=cfg.mask_block_cols,
    )
    if cfg.method == "fine-pruning" and cfg.mask_structure == "heads_neurons":
        inject_structured_masks(model, spec)
    elif cfg.method == "fine-pruning":
        inject_block_masks(model, spec)
    elif cfg.method == "splopa":
        inject_splopa(
            model,
            spec,
            cfg.num_splopa_prototypes,
            cfg.splopa_prototype_rank,
            cfg.splopa_init_range,
            cfg.shared_prototypes,
        )
    set_trainable(model, cfg.method, cfg.splopa_train_layernorm)
    return model


def _head(model: nn.Module) -> nn.Module:
    head = getattr(model, "qa_outputs", None)
    if head is None:
        raise SpaTuneError(f"model: {type(model).__name__} has no qa_outputs head")
    return head


def _qualified_prefix(model: nn.Module, submodule: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is submodule:
            return f"{name}." if name else ""
    raise ValueError("submodule not found in model")
