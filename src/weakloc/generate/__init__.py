"""Dataset generation: masks, inpainters, full-image generators and the dataset writer.

Modules, in the order data flows through them:
- ``sources``: which source images, which split, the one resize every generator and the real export use;
- ``masks`` (generic kinds, area control), ``faceparts`` (CelebAMask-HQ parts, dilation), ``landmarks``
  (mediapipe face mesh, optional extra);
- ``diffusion`` (RePaint and DDPM/DDIM loops on tensors), ``models`` (loading diffusers models from a folder
  or a hub id), ``classical`` (OpenCV / scikit-image / PatchMatch inpainters), ``generators`` (all of them
  behind one batch interface);
- ``writer`` (atomic, resumable, sharded job runner), ``tasks`` (mask plans, real export, inpainting, full
  images, sampling), ``cli`` (``weakloc generate ...``);
- ``builtin``: the small built-in dataset; ``testing``: tiny random diffusers models for tests and benchmarks.
See docs/generate.md.
"""
