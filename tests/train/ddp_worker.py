"""Launched by test_train.py under torchrun: trains a tiny run and writes this rank's weight checksum."""

import hashlib
import json
import os
import sys

import torch

from weakloc.config import DataConfig, TrainConfig
from weakloc.data.load import load_samples
from weakloc.train.loop import train

root, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
data, samples = load_samples(DataConfig(layout="builtin", root=root, builtin_images=40, builtin_size=32, builtin_seed=3,
                                        builtin_preset="quick", input_size=48))
cfg = TrainConfig(method="patches", setup="B", epochs=2, iters_per_epoch=3, batch_size=4, val_batch_size=8,
                  precision="fp32", options={"init": "default"})
result = train(out, data, cfg, samples, progress=False)
digest = hashlib.sha256()
for name, tensor in sorted(result.model.state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
rank = os.environ["RANK"]
with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
    json.dump({"sha": digest.hexdigest(), "world": os.environ["WORLD_SIZE"], "history": result.history}, f)
