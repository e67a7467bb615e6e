"""Face-part masks from landmarks, for faces without CelebAMask-HQ annotations (FFHQ, your own photos).

Backend: mediapipe's legacy face mesh (478 landmarks; its model ships inside the wheel), optional extra
``landmarks``. Parts are convex hulls of the mesh's index sets:

- eyes: each eye contour with its iris; mouth: the lips; nose: the nose set;
- skin: the face oval minus eyes, eyebrows, nose and mouth (as CelebAMask-HQ's ``skin``);
- hair: mediapipe's selfie (person) segmentation above the nose tip, minus the face oval (an approximation:
  there is no hair model in the wheel);
- glasses: the band over eyes and eyebrows. Landmarks cannot tell whether glasses are worn, so this
  attribute is only drawn when asked for explicitly (``--attributes ...,glasses``).

The face mesh finds one face per image: images should show one main face (aligned face crops are ideal).

mediapipe's C++ side (absl logging, TensorFlow Lite) writes ``W0000 ...`` and ``INFO: ...`` lines straight to
file descriptor 2, before absl is initialised and whatever GLOG_minloglevel / TF_CPP_MIN_LOG_LEVEL say; so
every call into it runs with that descriptor pointed at /dev/null (:func:`quiet_stderr`), including a first
blank image that lets its worker threads finish opening the models (and logging) before the descriptor is
given back. Its errors still arrive, as Python exceptions.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..extras import require

LANDMARK_ATTRIBUTES = ("skin", "hair", "eyes", "mouth", "nose")  # default: no "glasses" (see module doc)
MIN_HAIR_FRACTION = 0.005


def _indices(connections) -> np.ndarray:
    return np.array(sorted({i for edge in connections for i in edge}), dtype=np.int64)


def _hull(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask.astype(bool)


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (C/C++ code writes there directly), then restore it."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon): nothing to silence
        saved = None
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_mediapipe():
    """mediapipe, with its Python-side logging quietened too (absl's, which it imports)."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # for the builds that honour them
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        mp = require("landmarks")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl-py comes with the extra
        pass
    return mp


class FaceLandmarkParts:
    """Callable: HxWx3 uint8 RGB image -> {attribute: HxW bool mask}; empty dict when no face is found."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        mp = _import_mediapipe()
        mesh = mp.solutions.face_mesh
        with quiet_stderr():
            self._mesh = mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                       min_detection_confidence=min_confidence)
            self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            # the graphs open their models on worker threads, which log as they do: a first (blank) image
            # waits for them (process() returns once the graph is idle), so that they log in here
            blank = np.zeros((64, 64, 3), np.uint8)
            self._mesh.process(blank)
            self._selfie.process(blank)
        self._sets = {
            "left_eye": _indices(mesh.FACEMESH_LEFT_EYE | mesh.FACEMESH_LEFT_IRIS),
            "right_eye": _indices(mesh.FACEMESH_RIGHT_EYE | mesh.FACEMESH_RIGHT_IRIS),
            "left_brow": _indices(mesh.FACEMESH_LEFT_EYEBROW),
            "right_brow": _indices(mesh.FACEMESH_RIGHT_EYEBROW),
            "lips": _indices(mesh.FACEMESH_LIPS),
            "nose": _indices(mesh.FACEMESH_NOSE),
            "oval": _indices(mesh.FACEMESH_FACE_OVAL),
        }

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """(478, 2) pixel coordinates (x, y) of the main face, or None."""
        with quiet_stderr():
            result = self._mesh.process(np.ascontiguousarray(image))
        if not result.multi_face_landmarks:
            return None
        height, width = image.shape[:2]
        points = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * width, p.y * height) for p in points], dtype=np.float64)

    def __call__(self, image: np.ndarray, attributes: Sequence[str] = LANDMARK_ATTRIBUTES) -> dict[str, np.ndarray]:
        points = self.landmarks(image)
        if points is None:
            return {}
        shape = image.shape[:2]
        hull = {name: _hull(points[idx], shape) for name, idx in self._sets.items()}
        eyes = hull["left_eye"] | hull["right_eye"]
        brows = hull["left_brow"] | hull["right_brow"]
        parts = {
            "eyes": eyes,
            "mouth": hull["lips"],
            "nose": hull["nose"],
            "skin": hull["oval"] & ~(eyes | brows | hull["lips"] | hull["nose"]),
        }
        if "glasses" in attributes:
            parts["glasses"] = self._glasses_band(points, shape)
        if "hair" in attributes:
            hair = self._hair(image, points, hull["oval"])
            if hair.mean() >= MIN_HAIR_FRACTION:
                parts["hair"] = hair
        return {name: parts[name] for name in attributes if name in parts and parts[name].any()}

    def _glasses_band(self, points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        region = points[np.concatenate([self._sets[k] for k in ("left_eye", "right_eye", "left_brow", "right_brow")])]
        (x0, y0), (x1, y1) = region.min(0), region.max(0)
        margin = 0.12 * (x1 - x0)
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.rectangle(mask, (int(x0 - margin), int(y0 - 0.2 * margin)), (int(x1 + margin), int(y1 + margin)), 1, -1)
        return mask.astype(bool)

    def _hair(self, image: np.ndarray, points: np.ndarray, oval: np.ndarray) -> np.ndarray:
        with quiet_stderr():
            person = self._selfie.process(np.ascontiguousarray(image)).segmentation_mask > 0.5
        nose_tip_y = points[self._sets["nose"], 1].max()
        above = np.arange(image.shape[0])[:, None] < nose_tip_y
        face = cv2.dilate(oval.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        return person & above & ~face

    def close(self) -> None:
        with quiet_stderr():
            self._mesh.close()
            self._selfie.close()

    def __enter__(self) -> "FaceLandmarkParts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
