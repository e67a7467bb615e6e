"""Manipulation masks (True = region to regenerate), seeded and reproducible: ``generic`` (strokes, ellipses,
superpixels, area control), ``faceparts`` (CelebAMask-HQ parts, dilation), ``landmarks`` (face parts from
mediapipe's face mesh, optional extra)."""
