"""Dataset generation: mask plans, generators, the dataset writer, and the built-in benchmark.

In the order data flows through them:
- ``sources``: which source images, which split, the one resize every generator and the real export use;
- ``masks/``: generic kinds with area control, CelebAMask-HQ face parts, landmark face parts (optional extra);
- ``plan``: mask plans (``weakloc generate masks``), the fixed (image, mask) pairs every generator runs on;
- ``generators/``: RePaint, RePaint-LDM, DDPM/DDIM sampling, classical inpainters behind one batch interface,
  loading of diffusers models, and the registry of inpainters;
- ``jobs`` (real export, inpainting, full images, sampling as jobs) and ``writer`` (the atomic, resumable,
  sharded job runner); ``seeds``: per-item seeds; ``extras``: optional dependencies;
- ``builtin/``: the small built-in benchmark.
The command line is ``weakloc generate ...`` (weakloc.cli.generate). See docs/generate.md.
"""
