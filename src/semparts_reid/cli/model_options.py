"""The model options users tune on ``evaluate`` and ``extract``, and the model they give.

* ``--pooling avg|gem``: the global pooling. It builds a ``--model NAME``. A checkpoint
  keeps its own: GeM's exponent ``p`` is a learned weight, so a checkpoint trained with
  one pooling has no weights for the other. ``--pooling`` with a checkpoint must
  therefore equal the checkpoint's, else it is an error that says so.
* ``--last-stride 1|2``: the stride of ``layer4``. No weight depends on it, so it
  overrides a checkpoint's (the same weights on a 2x coarser or finer last feature
  map: 2 is faster, 1 is what re-ID models are trained with) and builds a ``--model``.
* ``--num-workers N``: the feature extractor's image-decoding worker processes
  (default: 4 on CUDA, 0 on CPU).

Nothing here imports torch at module level (``semparts-reid --help`` stays fast).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from .common import UsageError, non_negative_int

__all__ = ["add_model_options", "apply_model_options", "model_from_args"]

log = logging.getLogger(__name__)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--pooling``, ``--last-stride`` and ``--num-workers`` (all default: unset)."""
    g = p.add_argument_group("model options")
    g.add_argument(
        "--pooling", choices=["avg", "gem"], default=None,
        help="global pooling of a model built by name; a checkpoint keeps its own (GeM's p "
        "is a learned weight), so with --checkpoint it must match the checkpoint's",
    )  # fmt: skip
    g.add_argument(
        "--last-stride", type=int, choices=[1, 2], default=None,
        help="stride of the last ResNet stage; overrides a checkpoint's (no weight depends "
        "on it; 2 halves the last feature map)",
    )  # fmt: skip
    g.add_argument(
        "--num-workers", type=non_negative_int, default=None,
        help="image-decoding worker processes of the extractor (default: 4 on CUDA, 0 on CPU)",
    )  # fmt: skip


def apply_model_options(
    model: Any, pooling: str | None, last_stride: int | None, *, source: str
) -> Any:
    """``model`` (loaded from ``source``) with the options applied where meaningful.

    Returns the same model, or, for another ``last_stride``, the model rebuilt from its
    ``arch`` and ``build_kwargs`` with the same weights (loaded strictly) and the same
    ``data_config``.

    Raises:
        UsageError: ``pooling`` differs from the model's, or ``last_stride`` is asked of
            a model that cannot be rebuilt (no ``arch`` / ``build_kwargs``).
    """
    kwargs = dict(getattr(model, "build_kwargs", None) or {})
    arch = getattr(model, "arch", None)
    has = kwargs.get("pooling")
    if pooling is not None and pooling != has:
        raise UsageError(
            f"--pooling {pooling}: {source} holds a model with pooling {has!r}; a checkpoint "
            "keeps its pooling (GeM's p is a learned weight): drop --pooling or make it "
            f"{has!r}"
        )
    if last_stride is None or kwargs.get("last_stride") == last_stride:
        return model
    if not arch or "last_stride" not in kwargs:
        raise UsageError(
            f"--last-stride {last_stride}: {source} holds a model without arch/build_kwargs "
            "to rebuild it with another stride"
        )
    from ..models.factory import build_model

    rebuilt = build_model(str(arch), **{**kwargs, "last_stride": last_stride})
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.data_config = dict(model.data_config)
    log.info("%s: last stride %s -> %d (same weights)", source, kwargs["last_stride"],
             last_stride)
    return rebuilt.eval()


def model_from_args(args: argparse.Namespace) -> Any:
    """The model of ``--checkpoint FILE`` (or ``--model NAME`` where the command has it:
    a :func:`~semparts_reid.build_model` name with random weights, or a registry name /
    checkpoint) with ``--pooling`` / ``--last-stride`` applied (see the module docstring).

    Raises:
        UsageError: neither given, or an option that does not apply (see
            :func:`apply_model_options`).
    """
    from ..models.factory import build_model, list_models

    checkpoint, name = getattr(args, "checkpoint", None), getattr(args, "model", None)
    if not (checkpoint or name):
        raise UsageError("give --checkpoint FILE or --model NAME")
    if not checkpoint and name in list_models():
        kwargs = {k: v for k, v in (("pooling", args.pooling), ("last_stride", args.last_stride))
                  if v is not None}  # fmt: skip
        log.warning("%s built with random weights: pass --checkpoint for real features", name)
        return build_model(name, **kwargs).eval()
    from ..inference import load_model_from_checkpoint

    source = str(checkpoint or name)
    return apply_model_options(
        load_model_from_checkpoint(source), args.pooling, args.last_stride, source=source
    )
