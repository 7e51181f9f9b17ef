"""What to render: identities, cameras, splits, scenes and per-image parameters.

:func:`plan_render` draws everything a domain's images need from its random streams, in
a fixed order, into a :class:`RenderPlan`; :meth:`RenderPlan.render` turns a slice of
images into pixels and part maps with the vectorised renderer.

Random streams (seeded by ``seed``, the domain letter and ``GENERATOR_VERSION``): the
main stream draws the plan, appearance, scenes and geometry exactly as before domain
``c`` existed; the *body* stream draws the proportions, outfits, arm poses and camera
tone curves added with ``c``; the *capture* stream draws the sensor noise. A new
attribute therefore never shifts the draws of an existing one, and ``a``/``b`` render
the same pixels as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..market_layout import SPLIT_FOLDERS
from .config import GENERATOR_VERSION, SyntheticConfig
from .render import (
    DOMAINS,
    DomainStyle,
    add_clutter,
    camera_and_capture,
    render_background,
    render_people,
    sample_body,
    sample_colours,
    sample_identities,
    sample_scenes,
)

__all__ = ["SCENES_PER_CAMERA", "RenderPlan", "plan_render"]

SCENES_PER_CAMERA = 5
_FOLDERS = {
    0: SPLIT_FOLDERS["train"],
    1: SPLIT_FOLDERS["query"],
    2: SPLIT_FOLDERS["gallery"],
    3: SPLIT_FOLDERS["gallery"],
    4: SPLIT_FOLDERS["gallery"],
}


def _plan(cfg: SyntheticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Which identity is seen by which camera how often, and the split of every image.

    Splits: 0 train, 1 query, 2 gallery, 3 distractor (pid 0), 4 junk (pid -1).
    """
    st = DOMAINS[cfg.domain]
    n_ids = cfg.train_ids + cfg.test_ids
    n_cam_ids = rng.integers(2, min(4, st.num_cams) + 1, n_ids)
    ident, cam, split = [], [], []
    for i in range(n_ids):  # per identity (setup only, a few hundred iterations)
        cams = rng.choice(st.num_cams, n_cam_ids[i], replace=False)
        counts = rng.integers(1, cfg.max_per_cam + 1, len(cams))
        is_test = i >= cfg.train_ids
        n_query_cams = -(-len(cams) // 2) if is_test else 0  # at least one gallery-only camera
        q_cams = set(rng.choice(cams, n_query_cams, replace=False).tolist())
        for c, k in zip(cams, counts):
            for j in range(k):
                ident.append(i)
                cam.append(c)
                split.append(0 if not is_test else (1 if (j == 0 and c in q_cams) else 2))
    # distractors (pid 0) and junk (pid -1) in the gallery: people of no identity
    n_extra = max(2, cfg.test_ids // 4)
    ident += list(range(n_ids, n_ids + n_extra))
    cam += rng.integers(0, st.num_cams, n_extra).tolist()
    n_junk = max(1, n_extra // 4)
    split += [3] * (n_extra - n_junk) + [4] * n_junk
    return {"ident": np.asarray(ident), "cam": np.asarray(cam), "split": np.asarray(split)}


def _clutter_params(
    rng: np.random.Generator, n: int, c: int, st: DomainStyle, aspect: float
) -> dict[str, np.ndarray]:
    return {
        "cx": rng.uniform(0, aspect, (n, c)).astype(np.float32),
        "cy": rng.uniform(0.1, 0.95, (n, c)).astype(np.float32),
        "rw": rng.uniform(0.03, 0.12, (n, c)).astype(np.float32),
        "rh": rng.uniform(0.05, 0.25, (n, c)).astype(np.float32),
        "ellipse": rng.random((n, c)).astype(np.float32),
        "col": sample_colours(rng, n * c, st).reshape(n, c, 3),
    }


@dataclass
class RenderPlan:
    """Every random choice of one domain's images (leading dim: images, people or scenes).

    Attributes:
        cfg: the configuration drawn from.
        names: relative file stems, ``<split folder>/<pid>_c<cam>s1_<index>_00``.
        ident / cam / split: (N,) identity index, 0-based camera, split code.
        pids: (N,) the pid written in the name (identity + 1, 0 distractor, -1 junk).
        attrs: identity attributes (leading dim: people).
        scenes / scene_id: scene parameters (leading dim: scenes) and each image's scene.
        clutter / geo: per-image clutter objects and person geometry and pose.
        gain / gamma / blur / noise: per-image camera colour gains (N, 3), tone curve,
            blur flag and noise std.
        capture_rng: the stream of the sensor noise, consumed chunk by chunk in order.
    """

    cfg: SyntheticConfig
    names: list[str]
    ident: np.ndarray
    cam: np.ndarray
    split: np.ndarray
    pids: np.ndarray
    attrs: dict[str, np.ndarray]
    scenes: dict[str, np.ndarray]
    scene_id: np.ndarray
    clutter: dict[str, np.ndarray]
    geo: dict[str, np.ndarray]
    gain: np.ndarray
    gamma: np.ndarray
    blur: np.ndarray
    noise: np.ndarray
    capture_rng: np.random.Generator

    def __len__(self) -> int:
        return len(self.ident)

    @property
    def jpeg_quality(self) -> int:
        """JPEG quality of the domain's images."""
        return DOMAINS[self.cfg.domain].jpeg_quality

    def layers(self, sl: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images ``sl`` before the camera: ``(background+clutter, image, parts)``.

        Float images (n, H, W, 3) in [0, 1] and part maps (n, H, W) uint8. Draws nothing
        from :attr:`capture_rng`.
        """
        h, w = self.cfg.height, self.cfg.width
        bg = render_background({k: v[self.scene_id[sl]] for k, v in self.scenes.items()}, h, w)
        bg = add_clutter(bg, {k: v[sl] for k, v in self.clutter.items()})
        people = {k: v[self.ident[sl]] for k, v in self.attrs.items()}
        img, part = render_people(people, {k: v[sl] for k, v in self.geo.items()}, bg)
        return bg, img, part

    def render(self, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """Images ``sl`` as written: ``(uint8 (n, H, W, 3), parts uint8 (n, H, W))``.

        Call over consecutive slices from the start: the sensor noise is drawn in order.
        """
        _, img, part = self.layers(sl)
        img8 = camera_and_capture(
            img, self.gain[sl], self.blur[sl], self.noise[sl], self.capture_rng, self.gamma[sl]
        )
        return img8, part


def plan_render(cfg: SyntheticConfig) -> RenderPlan:
    """Draw every random choice of ``cfg``'s images (see the module doc for the streams)."""
    st = DOMAINS[cfg.domain]
    rng = np.random.default_rng([cfg.seed, ord(cfg.domain), GENERATOR_VERSION])
    body_rng = np.random.default_rng([cfg.seed, ord(cfg.domain), GENERATOR_VERSION, 2])
    plan = _plan(cfg, rng)
    ident, cam, split = plan["ident"], plan["cam"], plan["split"]
    n, n_people = len(ident), int(ident.max()) + 1
    attrs = sample_identities(rng, n_people, st)
    scenes = sample_scenes(rng, st.num_cams * SCENES_PER_CAMERA, st)
    # each (identity, camera) pair has a favourite scene and clutter layout
    pair = ident * st.num_cams + cam
    fav_scene = rng.integers(0, SCENES_PER_CAMERA, n_people * st.num_cams)[pair]
    aspect = cfg.width / cfg.height
    fav_clutter = _clutter_params(rng, n_people * st.num_cams, st.clutter, st, aspect)
    reuse = rng.random(n) < st.scene_reuse
    scene_id = cam * SCENES_PER_CAMERA + np.where(
        reuse, fav_scene, rng.integers(0, SCENES_PER_CAMERA, n)
    )
    own_clutter = _clutter_params(rng, n, st.clutter, st, aspect)
    clutter = {
        k: np.where(reuse.reshape((-1,) + (1,) * (v.ndim - 1)), fav_clutter[k][pair], v)
        for k, v in own_clutter.items()
    }
    cam_gain = (1 + rng.normal(0, st.cam_cast, (st.num_cams, 3))) * rng.uniform(
        *st.cam_bright, (st.num_cams, 1)
    )
    junk = split == 4
    scale = rng.uniform(*st.scale, n).astype(np.float32)
    geo: dict[str, Any] = {
        "cx": (rng.uniform(-st.shift, st.shift, n) + junk * rng.choice([-0.2, 0.2], n)),
        "top": (1 - scale * 0.92) / 2 + rng.uniform(-st.shift, st.shift, n) * 0.6 + junk * 0.35,
        "scale": scale,
        "mirror": rng.choice([-1.0, 1.0], n),
        "back": rng.random(n) < 0.4,
        "stride": rng.uniform(*st.stride, n),
        "occ": np.where(rng.random(n) < st.occlusion_p, rng.integers(1, 3, n), 0),
        "occ_size": rng.uniform(0.15, 0.4, n),
        "occ_col": sample_colours(rng, n, st),
    }
    gain = cam_gain[cam] * (1 + rng.normal(0, 0.04, (n, 1)))
    blur = rng.random(n) < st.blur_p
    noise = rng.uniform(0.5, 1.0, n) * st.noise
    # the body stream: proportions, outfits, arm pose, camera tone curves
    attrs.update(sample_body(body_rng, attrs, st))
    geo["arm_spread"] = body_rng.uniform(*st.arm_spread, n)
    gamma = body_rng.uniform(*st.cam_gamma, st.num_cams)[cam]

    pids = np.where(split >= 3, np.where(split == 4, -1, 0), ident + 1)
    names = [
        f"{_FOLDERS[int(sp)]}/{'-1' if p < 0 else f'{p:04d}'}_c{c + 1}s1_{i:06d}_00"
        for i, (sp, p, c) in enumerate(zip(split, pids, cam))
    ]
    capture_rng = np.random.default_rng([cfg.seed, ord(cfg.domain), GENERATOR_VERSION, 1])
    return RenderPlan(
        cfg, names, ident, cam, split, pids, attrs, scenes, scene_id, clutter, geo,
        gain, gamma, blur, noise, capture_rng,
    )  # fmt: skip
