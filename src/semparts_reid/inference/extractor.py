"""``FeatureExtractor``: batched, precision-aware re-ID feature extraction.

Example:
    >>> import numpy as np
    >>> from semparts_reid.inference import FeatureExtractor
    >>> extractor = FeatureExtractor("semparts_resnet18", device="cpu", batch_size=8)
    >>> crops = [np.zeros((100, 40, 3), np.uint8), np.zeros((90, 50, 3), np.uint8)]
    >>> extractor(crops, bgr=True).shape
    (2, 512)
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import InputError, InputNotFoundError
from ..precision import (
    PrecisionPolicy,
    forward_with_fp32_fallback,
    resolve_precision,
    to_memory_format,
)
from .fusion import fuse_resnet_conv_bn
from .preprocess import (
    Inputs,
    PathDataset,
    classify_inputs,
    cudnn_benchmark,
    normalize_batch,
    pil_to_crop,
    resize_batch,
    resize_crops,
)

__all__ = ["FeatureExtractor", "PartFeatures", "PartMapsOption", "load_model_from_checkpoint"]

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | Tensor


FeatureArray = TypeVar("FeatureArray", np.ndarray, Tensor)

PartMapsOption = Any
"""Given pooling masks per image (:class:`FeatureExtractor`'s ``part_maps``): an object
with ``read(path)`` giving a crop's (h, w) uint8 map in 0..3 or None (a
:class:`~semparts_reid.parsers.ParsedPartMaps`), a callable ``path -> map | None``
(both for path inputs), or a sequence of maps / None, one per input (any inputs)."""


@dataclass
class PartFeatures(Generic[FeatureArray]):
    """Global and part features of ``N`` images, with their labels where known.

    :meth:`FeatureExtractor.extract_parts` returns one without labels (numpy arrays or
    CPU tensors); :func:`~semparts_reid.inference.extract_split` returns one split
    (query, gallery or a training set) as float32 CPU tensors with its ``pids``,
    ``camids`` and ``paths``.

    Attributes:
        global_feat: ``(N, D)`` float32, L2-normalised.
        part_feats: ``(N, K, D)`` float32, each part L2-normalised (zero where invisible);
            ``K = 3`` (head, upper, lower), ``K = 0`` for global-only models.
        visibility: ``(N, K)`` float32, 1.0 where the part is visible.
        pids, camids: ``(N,)`` int64 labels of the images (camid ``-1``: unknown), or
            ``None`` where the features came without labels.
        paths: the image paths (``None`` where the features came without them).

    Example:
        >>> import torch
        >>> f = PartFeatures(torch.eye(2), torch.zeros(2, 0, 2), torch.zeros(2, 0))
        >>> len(f), f.num_parts, f.concat().shape
        (2, 0, torch.Size([2, 2]))
    """

    global_feat: FeatureArray
    part_feats: FeatureArray
    visibility: FeatureArray
    pids: np.ndarray | None = None
    camids: np.ndarray | None = None
    paths: list[str] | None = None

    def __len__(self) -> int:
        return int(self.global_feat.shape[0])

    @property
    def num_parts(self) -> int:
        """``K``, the number of parts (0 for a global-only model)."""
        return int(self.part_feats.shape[1])

    def labels(self, split: str = "features") -> tuple[np.ndarray, np.ndarray]:
        """``(pids, camids)``; raises :class:`InputError` naming ``split`` without them."""
        if self.pids is None or self.camids is None:
            raise InputError(
                f"{split}: these features have no pids/camids; expected the features of "
                "extract_split(extractor, records)"
            )
        return self.pids, self.camids

    def concat(self) -> Tensor:
        """``(N, (1 + K) D)``: global and visible parts side by side, renormalised."""
        g = torch.as_tensor(self.global_feat)
        if self.num_parts == 0:
            return g
        visible = torch.as_tensor(self.visibility)[..., None] > 0.5
        parts = torch.as_tensor(self.part_feats) * visible
        return F.normalize(torch.cat([g, parts.flatten(1)], dim=1), dim=1)


def load_model_from_checkpoint(
    source: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild a model from a checkpoint (path, URL or registry name) and load its weights.

    The checkpoint carries ``arch``, ``model_kwargs`` and ``data_config``
    (see ``docs/architecture.md``); keys are matched strictly.

    Raises:
        InputError: the file is a bare state dict without ``arch``.
    """
    from ..hub import get_pretrained_cfg, list_pretrained, load_pretrained, load_weights_file
    from ..models.factory import build_model

    label = os.fspath(source)
    if label in list_pretrained(kind="reid"):
        cfg = get_pretrained_cfg(label)
        model = build_model(cfg.arch, **dict(cfg.model_kwargs))
        load_pretrained(model, label)
        model.data_config = dict(cfg.data_config)
        return model
    ckpt = load_weights_file(label, map_location=map_location)
    if "arch" not in ckpt:
        raise InputError(
            f"{label} is a bare state dict without 'arch'; build the model yourself and pass "
            "it to FeatureExtractor, or save a checkpoint with arch/model_kwargs/data_config"
        )
    kwargs = dict(ckpt.get("model_kwargs") or {})
    if kwargs and "part_head" not in kwargs:  # saved before the decoder head existed: the 1x1 head
        kwargs["part_head"] = "linear"
    model = build_model(str(ckpt["arch"]), **kwargs)
    load_pretrained(model, ckpt, strict=True)
    if ckpt.get("data_config"):
        model.data_config = dict(ckpt["data_config"])
    return model


def _resolve_model(source: Any, pretrained: str | None) -> nn.Module:
    if isinstance(source, nn.Module):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "model must be an nn.Module, a build_model name, a checkpoint path/URL or a "
            f"registry name, got {type(source).__name__}"
        )
    from ..models.factory import build_model, list_models

    name = os.fspath(source)
    if name in list_models():
        if pretrained is None:
            logger.warning("%s built with random weights: pass pretrained= for real features",
                           name)
        return build_model(name, pretrained=pretrained)
    return load_model_from_checkpoint(name)


def _checked_data_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` when it holds ``input_size`` (H, W), ``mean`` and ``std`` (3 each,
    std > 0); raises ``ValueError`` saying what is missing or wrong otherwise."""
    missing = {"input_size", "mean", "std"} - set(config)
    if missing:
        raise ValueError(
            f"the model has no data_config and data_config= lacks {sorted(missing)}; "
            "expected {'input_size': (H, W), 'mean': (3,), 'std': (3,)}"
        )
    if len(config["input_size"]) != 2 or min(config["input_size"]) < 1:
        raise ValueError(f"data_config input_size must be (H, W), got {config['input_size']}")
    if len(config["mean"]) != 3 or len(config["std"]) != 3 or min(config["std"]) <= 0:
        raise ValueError(
            f"data_config mean/std must hold 3 values (std > 0), got {config['mean']}, "
            f"{config['std']}"
        )
    return config


class FeatureExtractor:
    """Turn person crops into L2-normalised re-ID features.

    Args:
        model: an ``nn.Module`` with ``data_config`` (a ``SemPartsNet``), a
            :func:`~semparts_reid.build_model` name, a checkpoint file / URL, or a
            registry name of a re-ID checkpoint. The module is put in eval mode and moved
            to the device and memory format in place.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda:N"``.
        batch_size: images per forward pass.
        precision: ``"auto"`` (bf16 where native, fp16 on older GPUs, else fp32),
            ``"fp32"``, ``"bf16"`` or ``"fp16"``; see
            :func:`~semparts_reid.precision.resolve_precision`.
        flip: average the features of each image and its horizontal mirror.
        compile: wrap the model in ``torch.compile``; if compilation fails (a Dynamo or
            Inductor error) the model runs eagerly, with one warning. Other errors of the
            compiled model (out of memory, bad input) propagate.
        num_workers: DataLoader workers decoding image files; default 4 on CUDA, 0 on CPU.
        data_config: ``{"input_size": (H, W), "mean", "std"}`` for models without one.
        pretrained: weights for a ``build_model`` name (``"imagenet"``, a path, ...).
        progress: tqdm bar over batches; default: when there are more than 8 batches.
        fuse_bn: fold the backbone's batch norms into its convolutions (inference only:
            one pass over the feature map less per convolution). Default: on when the
            extractor built the model itself (name or checkpoint); for a module you pass
            in, ``True`` works on a copy so your module stays trainable.
        channels_last: the memory format of the model and inputs; default: the
            precision policy's (``channels_last`` on CPU and CUDA).
        part_maps: given part maps to pool the part features with, per image
            (:data:`PartMapsOption`; e.g. the ``ParsedPartMaps`` of a human parser's
            output): an image with a map pools with it (resized to the input size,
            nearest), one without (None) with its predicted part maps. Needs a model
            whose forward takes ``part_labels`` and ``known`` (``SemPartsNet``). Each
            call may override it. Default: the predicted maps for every image.

    Inputs (one kind per call): a path or list of paths; PIL images; ``(H, W, 3)`` uint8
    arrays (``bgr=True`` for OpenCV crops) or an ``(N, H, W, 3)`` array; ``(3, H, W)``
    tensors or an ``(N, 3, H, W)`` tensor (uint8, or float in ``[0, 1]``).

    Float tensors must hold values in ``[0, 1]``: a float batch whose values leave that
    range (e.g. 0-255 floats) raises ``InputError`` (a ``ValueError``) naming the range
    seen; pass uint8 for 0-255 data. The check is one ``aminmax`` per batch.
    """

    def __init__(
        self,
        model: nn.Module | str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        batch_size: int = 64,
        precision: str = "auto",
        flip: bool = False,
        compile: bool = False,
        num_workers: int | None = None,
        data_config: Mapping[str, Any] | None = None,
        pretrained: str | None = None,
        progress: bool | None = None,
        fuse_bn: bool | None = None,
        channels_last: bool | None = None,
        part_maps: PartMapsOption = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if num_workers is not None and num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.policy: PrecisionPolicy = resolve_precision(device, precision,
                                                         channels_last=channels_last)
        self.device = self.policy.device
        owned = not isinstance(model, nn.Module)
        self.model = _resolve_model(model, pretrained).eval()
        if fuse_bn if fuse_bn is not None else owned:
            if not owned:
                self.model = copy.deepcopy(self.model)
            backbone = getattr(self.model, "backbone", None)
            fused = fuse_resnet_conv_bn(backbone) if isinstance(backbone, nn.Module) else 0
            logger.debug("folded %d conv+bn pairs", fused)
        config = _checked_data_config(
            dict(data_config or getattr(self.model, "data_config", None) or {})
        )
        self.data_config = config
        self.input_size: tuple[int, int] = (int(config["input_size"][0]),
                                            int(config["input_size"][1]))
        mean = torch.tensor(config["mean"], dtype=torch.float32, device=self.device)
        std = torch.tensor(config["std"], dtype=torch.float32, device=self.device)
        self._mean, self._inv_std = mean, 1.0 / std  # (3,), applied on NHWC views
        self.batch_size = batch_size
        self.flip = bool(flip)
        self.num_workers = (
            num_workers if num_workers is not None
            else (min(4, os.cpu_count() or 1) if self.device.type == "cuda" else 0)
        )
        self.progress = progress
        self.part_maps = part_maps
        self.policy.prepare_module(self.model)
        self._forward_fn: Any = self.model
        self._compiled = False
        self._batch_index = -1
        if compile:
            self._forward_fn = torch.compile(self.model)
            self._compiled = True

    def __repr__(self) -> str:
        return (f"FeatureExtractor({getattr(self.model, 'arch', type(self.model).__name__)}, "
                f"{self.policy}, batch_size={self.batch_size}, flip={self.flip})")

    # ------------------------------------------------------------------ public API

    def __call__(self, inputs: Any, *, bgr: bool = False,
                 return_numpy: bool | None = None,
                 part_maps: PartMapsOption = None) -> ArrayLike:
        """Global features ``(N, D)`` float32, L2-normalised.

        Args:
            inputs: see the class docstring; an empty list gives an ``(0, D)`` result.
            bgr: numpy/tensor inputs are BGR (OpenCV) rather than RGB.
            return_numpy: numpy array (default, unless the input was a tensor) or CPU tensor.
            part_maps: given pooling masks for this call (default: the extractor's).
        """
        feats, _, _ = self._run(inputs, bgr, parts=False, part_maps=part_maps)
        return self._out(feats, inputs, return_numpy)

    def extract_parts(self, inputs: Any, *, bgr: bool = False,
                      return_numpy: bool | None = None,
                      part_maps: PartMapsOption = None) -> PartFeatures[Any]:
        """Global ``(N, D)``, part ``(N, K, D)`` features and visibility ``(N, K)``
        (numpy arrays or CPU tensors as for :meth:`__call__`; no labels). ``part_maps``:
        given pooling masks for this call (default: the extractor's)."""
        g, p, v = self._run(inputs, bgr, parts=True, part_maps=part_maps)
        assert p is not None and v is not None
        out_g, out_p, out_v = (self._out(t, inputs, return_numpy) for t in (g, p, v))
        return PartFeatures(out_g, out_p, out_v)

    @property
    def feat_dim(self) -> int | None:
        """``D`` when the model declares it."""
        dim = getattr(self.model, "feat_dim", None)
        return int(dim) if dim is not None else None

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _out(t: Tensor, inputs: Any, return_numpy: bool | None) -> ArrayLike:
        if return_numpy is None:
            return_numpy = not isinstance(inputs, torch.Tensor)
        return t.numpy() if return_numpy else t

    def _empty(self, parts: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        dim = self.feat_dim
        if dim is not None and not parts:
            return torch.zeros(0, dim), None, None
        # shapes not declared (or K wanted): ask the model with one blank image; only the
        # shapes are used, so the feature check of _forward (a blank image may well give
        # a zero feature) does not apply
        with torch.inference_mode(), self.policy.autocast():
            dummy = torch.zeros(1, 3, *self.input_size, device=self.device)
            g, p, v = _unpack(self._call_model(to_memory_format(dummy, self.policy.channels_last)))
        if not parts:
            return g.new_zeros(0, g.shape[1], dtype=torch.float32).cpu(), None, None
        if p is None or v is None:
            raise TypeError(f"{type(self.model).__name__} returns no part features; "
                            "extract_parts needs a model returning a ReIDOutput")
        return (torch.zeros(0, g.shape[1]), torch.zeros(0, *p.shape[1:]),
                torch.zeros(0, *v.shape[1:]))

    def _run(self, inputs: Any, bgr: bool, parts: bool,
             part_maps: PartMapsOption = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        spec = self.check_inputs(inputs, bgr)
        if len(spec) == 0:
            return self._empty(parts)
        lookup = self._map_lookup(part_maps if part_maps is not None else self.part_maps, spec)
        n_batches = -(-len(spec) // self.batch_size)
        self._batch_index = -1  # counted by _forward, named in errors
        show = self.progress if self.progress is not None else n_batches > 8
        outs: list[tuple[Tensor, Tensor | None, Tensor | None]] = []
        with torch.inference_mode(), cudnn_benchmark(self.device):
            for i, x in enumerate(tqdm(self._batches(spec, bgr), total=n_batches,
                                       disable=not show, desc="extract", unit="batch")):
                masks = None
                if lookup is not None:
                    start = i * self.batch_size
                    masks = self._mask_batch(lookup, range(start, start + x.shape[0]))
                outs.append(self._forward(x, parts, masks))
        g = torch.cat([o[0] for o in outs])
        if not parts:
            return g, None, None
        return g, torch.cat([o[1] for o in outs]), torch.cat([o[2] for o in outs])  # type: ignore[misc]

    def check_inputs(self, inputs: Any, bgr: bool, name: str = "inputs") -> Inputs:
        """Sort ``inputs`` into one kind and check them (shapes, ``bgr``, missing files).

        What :meth:`batches` takes; for code that runs the model on the extractor's
        preprocessing itself (e.g. :func:`~semparts_reid.inference.predict_part_maps`).
        """
        spec = classify_inputs(inputs, name)
        if bgr and spec.kind in ("path", "pil"):
            raise ValueError(f"bgr=True applies to numpy arrays and tensors, not {spec.kind} "
                             "inputs (files and PIL images are decoded as RGB)")
        if spec.kind == "path":
            missing = [p for p in spec.items or [] if not os.path.isfile(p)]
            if missing:
                raise InputNotFoundError(
                    f"{name}: {len(missing)} input file(s) not found, first: {missing[0]}")
        return spec

    def batches(self, spec: Inputs, bgr: bool = False) -> Iterator[Tensor]:
        """The model's input batches ``(B, 3, H, W)`` of checked inputs (see
        :meth:`check_inputs`): resized, normalised, on the device, in its memory format."""
        return self._batches(spec, bgr)

    def _normalise(self, x: Tensor, bgr: bool, scale: float) -> Tensor:
        """uint8/float batch -> normalised float32 ``(B, 3, H, W)`` on the device."""
        x = x.to(self.device, non_blocking=True)
        y = normalize_batch(x, self._mean, self._inv_std, scale=scale, bgr=bgr)
        return to_memory_format(y, self.policy.channels_last)

    def _batches(self, spec: Inputs, bgr: bool) -> Iterator[Tensor]:
        bs, size = self.batch_size, self.input_size
        if spec.kind == "path":
            # pinned batches on CUDA, copied non_blocking by _normalise; the workers live
            # for this one pass (a call is one pass over its files: nothing to persist)
            loader = torch.utils.data.DataLoader(
                PathDataset(spec.items or [], size), batch_size=bs, shuffle=False,
                num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                persistent_workers=False,
            )
            for x in loader:
                yield self._normalise(x, False, 255.0)
            return
        if spec.batch is not None:
            scale = 255.0 if spec.batch.dtype == torch.uint8 else 1.0
            for start in range(0, len(spec.batch), bs):
                chunk = spec.batch[start:start + bs].to(self.device, non_blocking=True)
                yield self._normalise(resize_batch(chunk, size), bgr, scale)
            return
        items = spec.items or []
        for start in range(0, len(items), bs):
            part = items[start:start + bs]
            crops = [pil_to_crop(im) for im in part] if spec.kind == "pil" else part
            scale = 255.0 if crops[0].dtype == torch.uint8 else 1.0
            yield self._normalise(resize_crops(crops, size, self.device), bgr, scale)

    def _map_lookup(
        self, part_maps: PartMapsOption, spec: Inputs
    ) -> Callable[[int], np.ndarray | None] | None:
        """``index -> the given map of input index (or None)``, or None without maps."""
        if part_maps is None:
            return None
        if isinstance(part_maps, Sequence) and not isinstance(part_maps, str):
            if len(part_maps) != len(spec):
                raise InputError(f"part_maps: {len(part_maps)} maps for {len(spec)} inputs; "
                                 "expected one (or None) per input")
            return lambda i: part_maps[i]
        if spec.kind != "path":
            raise InputError("part_maps looked up by path need path inputs; for "
                             f"{spec.kind} give a sequence of maps, one per input")
        read = getattr(part_maps, "read", None)
        if read is None and not callable(part_maps):
            raise TypeError("part_maps: expected an object with read(path), a callable "
                            f"or a sequence, got {type(part_maps).__name__}")
        paths = spec.items or []
        return (lambda i: read(paths[i])) if read is not None else (lambda i: part_maps(paths[i]))

    def _mask_batch(self, lookup: Callable[[int], np.ndarray | None],
                    indices: range) -> tuple[Tensor, Tensor]:
        """``(label maps (B, H, W) uint8 at the input size, known (B,) bool)`` on the
        device: the given maps resized (nearest, as the trainer's test transform), 255
        and ``known=False`` for an image without one."""
        from ..data.transforms import JointTransform

        resize = JointTransform(self.input_size, (0.0,) * 3, (1.0,) * 3,
                                label_dtype=torch.uint8)
        maps, known = [], []
        for i in indices:
            arr = lookup(i)
            if arr is not None and np.asarray(arr).ndim != 2:
                raise InputError(f"part_maps: map of input {i} has shape "
                                 f"{np.asarray(arr).shape}; expected (h, w) labels")
            maps.append(resize.labels_only(arr))
            known.append(arr is not None)
        labels = torch.stack(maps).to(self.device, non_blocking=True)
        return labels, torch.tensor(known, device=self.device)

    def _call_model(self, x: Tensor, masks: tuple[Tensor, Tensor] | None = None) -> Any:
        if masks is not None:
            return self._call_model_masked(x, masks)
        if self._compiled:
            try:
                return self._forward_fn(x)
            except _compiler_errors() as exc:  # no compiler, unsupported op: stay usable
                if _caused_by_oom(exc):
                    raise
                logger.warning("torch.compile failed (%s: %s); running the model eagerly",
                               type(exc).__name__, exc)
                self._forward_fn, self._compiled = self.model, False
        return self._forward_fn(x)

    def _call_model_masked(self, x: Tensor, masks: tuple[Tensor, Tensor]) -> Any:
        """The model pooling with given masks (``part_labels`` + ``known``), eagerly."""
        try:
            return self.model(x, masks[0], known=masks[1])
        except TypeError as exc:
            raise TypeError(f"{type(self.model).__name__} takes no given pooling masks "
                            f"(part_maps needs a SemPartsNet): {exc}") from exc

    def _forward(self, x: Tensor, parts: bool, masks: tuple[Tensor, Tensor] | None = None,
                 ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        b = x.shape[0]
        if self.flip:
            x = torch.cat([x, x.flip(3)])
            if masks is not None:
                masks = (torch.cat([masks[0], masks[0].flip(-1)]), masks[1].repeat(2))
        self._batch_index += 1
        out = forward_with_fp32_fallback(
            self.policy, lambda y: self._call_model(y, masks), x, lambda o: _unpack(o)[0],
            label=f"FeatureExtractor batch {self._batch_index}",
        )
        g, p, v = _unpack(out)
        g = g.float()
        if self.flip:
            g = g[:b] + g[b:]
        g = F.normalize(g, dim=1).cpu()
        if not parts:
            return g, None, None
        if p is None or v is None:
            raise TypeError(f"{type(self.model).__name__} returns no part features; "
                            "extract_parts needs a model returning a ReIDOutput")
        p, v = p.float(), v.float()
        if self.flip:
            p, v = p[:b] + p[b:], torch.maximum(v[:b], v[b:])
        return g, F.normalize(p, dim=-1).cpu(), v.cpu()


def _compiler_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean ``torch.compile`` could not build the model (not a runtime error).

    Dynamo's and Inductor's exception bases, looked up by name so that torch versions
    lacking one of them still work. Anything else (out of memory, a bad input, a bug in
    the model) propagates instead of silently rerunning the model eagerly.
    """
    import torch._dynamo.exc as dynamo_exc
    import torch._inductor.exc as inductor_exc

    found = [
        getattr(module, name, None)
        for module, name in (
            (dynamo_exc, "TorchDynamoException"),  # BackendCompilerFailed, Unsupported, ...
            (inductor_exc, "InductorError"),
            (inductor_exc, "CppCompileError"),
            (inductor_exc, "InvalidCxxCompiler"),
            (inductor_exc, "OperatorIssue"),  # missing lowering / decomposition
            (inductor_exc, "TritonMissing"),
            (dynamo_exc, "TritonUnavailableError"),
        )
    ]
    return tuple(c for c in found if isinstance(c, type) and issubclass(c, BaseException))


def _caused_by_oom(exc: BaseException) -> bool:
    """Whether an out-of-memory error is ``exc`` or in its cause chain (e.g. in autotuning)."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, oom):
            return True
        seen.add(id(cur))
        cur = getattr(cur, "inner_exception", None) or cur.__cause__ or cur.__context__
    return False


def _unpack(out: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``ReIDOutput`` (or a bare ``(B, D)`` tensor) -> (global, parts, visibility)."""
    if isinstance(out, Tensor):
        if out.ndim != 2:
            raise ValueError(f"model returned a tensor of shape {tuple(out.shape)}; "
                             "expected (B, D) features or a ReIDOutput")
        return out, None, None
    g = getattr(out, "global_feat", None)
    if not isinstance(g, Tensor):
        raise TypeError(f"model output {type(out).__name__} has no global_feat tensor")
    return g, getattr(out, "part_feats", None), getattr(out, "visibility", None)
