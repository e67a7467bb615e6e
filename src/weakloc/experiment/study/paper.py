"""The paper's own numbers (Tantaru, Oneata & Oneata, WACV 2024; shared/paper), printed beside ours in the study
report, and the same formulas the report applies to our numbers applied to them (findings.py)."""

from __future__ import annotations

# Table 2, Repaint-P2/CelebA-HQ: {setup: {method: (IoU, PBCA, AP)}}; no AP in setup C
TABLE2 = {
    "A": {"gradcam": (16.8, 83.1, 67.3), "patches": (64.9, 96.7, 95.3), "attention": (9.7, 83.4, 79.3)},
    "B": {"gradcam": (21.5, 85.1, 94.4), "patches": (37.7, 79.8, 95.3), "attention": (23.2, 86.3, 94.4)},
    "C": {"gradcam": (83.7, 96.8, None), "patches": (84.5, 98.6, None), "attention": (70.3, 97.6, None)},
}

# Table 3, Patches tested on Repaint-P2/CelebA-HQ: {setup: {"same": (IoU, PBCA, AP), "other": ...}}; trained on
# CelebA-HQ (same source) or FFHQ (other source)
TABLE3 = {
    "A": {"same": (64.9, 96.7, 95.3), "other": (25.1, 88.9, 84.4)},
    "B": {"same": (37.7, 79.8, 95.3), "other": (23.3, 64.4, 75.2)},
    "C": {"same": (84.5, 98.6, None), "other": (32.3, 89.2, None)},
}

# Figure 6, Patches setup C, IoU: {trained on: {tested on: IoU}}; generators in the paper's order, "w/o X" = the
# other three together
FIGURE6_GENERATORS = ("repaint", "ldm", "lama", "pluralistic")
FIGURE6 = {
    "repaint": {"repaint": 84.1, "ldm": 19.5, "lama": 38.0, "pluralistic": 41.4},
    "ldm": {"repaint": 11.5, "ldm": 18.1, "lama": 7.5, "pluralistic": 11.5},
    "lama": {"repaint": 10.3, "ldm": 11.4, "lama": 88.7, "pluralistic": 48.5},
    "pluralistic": {"repaint": 0.2, "ldm": 0.5, "lama": 44.9, "pluralistic": 86.4},
    "w/o repaint": {"repaint": 1.1, "ldm": 19.8, "lama": 87.8, "pluralistic": 85.7},
    "w/o ldm": {"repaint": 85.2, "ldm": 19.7, "lama": 88.4, "pluralistic": 87.7},
    "w/o lama": {"repaint": 78.6, "ldm": 18.0, "lama": 42.6, "pluralistic": 86.0},
    "w/o pluralistic": {"repaint": 80.2, "ldm": 17.9, "lama": 88.0, "pluralistic": 41.9},
}

# the built-in benchmark's counterpart of each of the paper's generators: a pixel diffusion model through
# RePaint, a latent diffusion model (decoded), and two non-diffusion inpainters in place of LaMa and Pluralistic
BUILTIN_COUNTERPART = {"repaint": "repaint", "repaint-ldm": "ldm", "telea": "lama", "biharmonic": "pluralistic"}
