"""Training: the one loop for every method and setup (``loop``) and its checkpoints (``checkpoint``).

Kept free of imports so that ``weakloc.train.checkpoint`` loads without the training loop."""
