"""``predict_part_maps``: the semantic part maps a model predicts for images.

The part classifier of a :class:`~semparts_reid.models.SemPartsNet` scores every
position of the backbone's feature map (``h x w``, e.g. 16 x 8 for a 256 x 128 input)
as background, head, upper or lower body. This module runs it on images with the
:class:`~semparts_reid.inference.FeatureExtractor`'s preprocessing and precision policy
and returns softmax probabilities upsampled to image resolution, for figures
(:func:`~semparts_reid.viz.plot_part_maps`, the overlay of
:func:`~semparts_reid.viz.plot_ranked_results`) or for checking a model's parts against
a human parser.

Example:
    >>> from semparts_reid import build_model
    >>> from semparts_reid.inference import predict_part_maps
    >>> model = build_model("semparts_resnet18", input_size=(64, 32))
    >>> predict_part_maps(model, ["a.jpg", "b.jpg"], device="cpu").shape  # doctest: +SKIP
    (2, 4, 64, 32)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ._resolve import resolved_extractor
from .extractor import FeatureExtractor

__all__ = ["predict_part_maps"]


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size={size!r}: expected (H, W), two positive ints") from None
    if h < 1 or w < 1:
        raise InputError(f"size={size!r}: expected (H, W), two positive ints")
    return h, w


def predict_part_maps(
    model_or_extractor: nn.Module | FeatureExtractor,
    images: Any,
    *,
    bgr: bool = False,
    size: tuple[int, int] | None = None,
    return_numpy: bool | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    data_config: Mapping[str, Any] | None = None,
) -> np.ndarray | Tensor:
    """Part probabilities ``(N, K+1, H, W)`` of ``images`` (channel 0 background).

    Each image is resized to the model's input size and normalised exactly as the
    :class:`FeatureExtractor` does for features; the part classifier's logits
    ``(N, K+1, h, w)`` are turned into probabilities (softmax over the ``K+1`` classes)
    and upsampled bilinearly to ``size``. Because the extractor stretches every image to
    the input size, the maps line up with the original image when stretched back onto
    it, whatever its size.

    Args:
        model_or_extractor: a model returning a ``ReIDOutput`` with ``part_logits``
            (a ``SemPartsNet`` built with parts), or a :class:`FeatureExtractor` around
            one (its device, precision and batch size are then used; ``flip`` is
            ignored: maps are spatial). A model's train/eval mode is restored afterwards.
        images: what :class:`FeatureExtractor` accepts: paths, PIL images, ``(h, w, 3)``
            uint8 arrays (``bgr=True`` for OpenCV crops), ``(3, h, w)`` tensors or one
            ``(N, 3, H, W)`` tensor.
        bgr: numpy/tensor inputs are BGR.
        size: ``(H, W)`` of the returned maps; default the model's input size.
        return_numpy: numpy (default, unless the input was a tensor) or a CPU tensor.
        device, precision, batch_size, num_workers, data_config: how to build the
            extractor for a model (see :class:`FeatureExtractor`).

    Returns:
        ``(N, K+1, H, W)`` float32 probabilities summing to 1 over the classes.

    Raises:
        InputError: a missing file, a bad ``size``, or a model without a part branch.
        TypeError / ValueError: inputs the extractor does not accept.
    """
    out_size = _check_size(size)
    with resolved_extractor(model_or_extractor, device=device, precision=precision,
                            batch_size=batch_size, num_workers=num_workers,
                            data_config=data_config, progress=False) as extractor:
        out_size = out_size or extractor.input_size
        spec = extractor.check_inputs(images, bgr, "images")
        maps: list[Tensor] = []
        with torch.inference_mode():
            for x in extractor.batches(spec, bgr):  # the extractor's own preprocessing
                with extractor.policy.autocast():
                    logits = getattr(extractor._call_model(x), "part_logits", None)
                if logits is None:
                    raise InputError(
                        f"{type(extractor.model).__name__} predicts no part maps (built with "
                        "parts=False, or not a SemPartsNet): predict_part_maps needs a model "
                        "with a part classifier")
                probs = F.interpolate(logits.float().softmax(1), size=out_size,
                                      mode="bilinear", align_corners=False)
                maps.append(probs.cpu().contiguous())
    if maps:
        result = torch.cat(maps)
    else:  # no images: the shape a SemPartsNet would give
        k = getattr(extractor.model, "num_parts", 3)
        result = torch.zeros(0, (k if isinstance(k, int) else 3) + 1, *out_size)
    if return_numpy is None:
        return_numpy = not isinstance(images, Tensor)
    return result.numpy() if return_numpy else result
