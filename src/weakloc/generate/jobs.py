"""What each ``weakloc generate`` output command does: turn a mask plan or a count into jobs for the writer.

Outputs follow the released DOLOS layout under ``ROOT/DATASET`` (loadable with ``dolos_samples``)::

    real/{split}/{name}.png                        sources, preprocessed exactly as the generators see them
    fake/{GEN}/images/{split}/{id}.png             local fakes (inpainted)
    fake/{GEN}/masks/{split}/{id}.png              their truth masks, black = fake
    fake/{GEN}/{split}/{id}.png                    full fakes (sampled, or fully regenerated)
    fake/{GEN}/generator.json, real/export.json    the settings (a rerun with other settings is refused)
    manifest-{GEN}.jsonl, manifest-real.jsonl      rows: path,label,mask,split,generator,source + provenance

Manifest paths are relative to ``ROOT/DATASET``, so ``cat manifest-*.jsonl > manifest.jsonl`` there gives one
manifest of everything for the ``manifest`` layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..data.images import read_mask
from ..data.samples import SPLITS
from ..errors import ConfigError
from .plan import read_plan, unique_sources
from .seeds import derive_seed
from .sources import prepare
from .writer import Done, Job, Output, Report, Shard, check_spec, run_jobs


def _dataset_dir(root: str | Path, dataset: str) -> Path:
    if not dataset or "/" in dataset or dataset.startswith("."):
        raise ConfigError(f"--dataset must be a plain folder name (e.g. celebahq), not {dataset!r}")
    return Path(root) / dataset


def _check_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or name == "real":
        raise ConfigError(f"--name must be a plain folder name such as repaint-p2, not {name!r}")
    return name


def export_real(plan: str | Path, root: str | Path, dataset: str, *, shard: Shard = Shard(),
                progress: bool = True) -> Report:
    """Write the plan's source images as the dataset's reals, preprocessed exactly like the fakes' sources."""
    spec, rows = read_plan(plan)
    base = _dataset_dir(root, dataset)
    size = spec["size"]
    check_spec(base / "real" / "export.json", {"plan": spec, "size": size})
    jobs = [Job(s["name"], (base / "real" / s["split"] / f"{s['name']}.png",), s) for s in unique_sources(rows)]

    def compute(batch: list[Job]) -> list[Done]:
        out = []
        for job in batch:
            rel = job.outputs[0].relative_to(base).as_posix()
            out.append(Done([Output(job.outputs[0], prepare(job.data["source"], size))],
                            [{"path": rel, "label": 0, "mask": "", "split": job.data["split"], "generator": "",
                              "source": dataset, "source_image": job.data["source"]}]))
        return out

    return run_jobs(jobs, compute, manifest=base / "manifest-real.jsonl", work=base / ".weakloc" / "real",
                    shard=shard, desc="real", progress=progress)


def inpaint_plan(plan: str | Path, root: str | Path, dataset: str, name: str, inpainter, *, seed: int = 0,
                 batch_size: int = 1, shard: Shard = Shard(), limit: int | None = None,
                 progress: bool = True) -> Report:
    """Inpaint every (source, mask) of the plan with ``inpainter`` into ``ROOT/DATASET/fake/NAME``.

    ``batch_size`` is recorded with the settings: batches of another size may round pixels differently (and
    shards cut the run in batches), so a rerun with another one is refused."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    spec, rows = read_plan(plan)
    plan = Path(plan)
    base = _dataset_dir(root, dataset)
    folder = base / "fake" / _check_name(name)
    size = spec["size"]
    inpainter.check_size(size)
    settings = inpainter.settings()
    check_spec(folder / "generator.json", {"generator": inpainter.name, "settings": settings, "seed": seed,
                                           "batch_size": batch_size, "plan": spec})  # not --limit (see docs)
    available = len(rows)
    rows = rows[:limit] if limit else rows
    jobs = [Job(r["id"], (folder / "images" / r["split"] / f"{r['id']}.png",
                          folder / "masks" / r["split"] / f"{r['id']}.png"), r) for r in rows]

    def compute(batch: list[Job]) -> list[Done]:
        images = np.stack([prepare(job.data["source"], size) for job in batch])
        masks = np.stack([read_mask(plan / job.data["mask"], expected_size=(size, size)) for job in batch])
        seeds = [derive_seed(seed, job.id) for job in batch]
        out, truth = inpainter.inpaint(images, masks, seeds)
        results = []
        for i, job in enumerate(batch):
            image_path, mask_path = job.outputs
            row = {"path": image_path.relative_to(base).as_posix(), "label": 1,
                   "mask": mask_path.relative_to(base).as_posix(), "split": job.data["split"], "generator": name,
                   "source": dataset, "source_image": job.data["source"],
                   "plan_mask": str((plan / job.data["mask"]).resolve()), "mask_kind": job.data.get("mask_kind"),
                   "attribute": job.data.get("attribute"), "mask_area": round(float(truth[i].mean()), 6),
                   "seed": seeds[i], "settings": settings}
            if not np.array_equal(truth[i], masks[i]):
                row["inpainted_mask"] = row["plan_mask"]  # the decoded-whole LDM policy: truth is the whole image
            results.append(Done([Output(mask_path, truth[i], mask=True), Output(image_path, out[i])], [row]))
        return results

    return run_jobs(jobs, compute, manifest=base / f"manifest-{name}.jsonl", work=base / ".weakloc" / name,
                    batch_size=batch_size, shard=shard, desc=name, available=available if limit else None,
                    progress=progress)


def regenerate_plan(plan: str | Path, root: str | Path, dataset: str, name: str, generator, *, seed: int = 0,
                    shard: Shard = Shard(), progress: bool = True) -> Report:
    """Full-image variant from sources: every source of the plan regenerated whole into ``fake/NAME/{split}``."""
    spec, rows = read_plan(plan)
    base = _dataset_dir(root, dataset)
    folder = base / "fake" / _check_name(name)
    size = spec["size"]
    settings = generator.settings()
    check_spec(folder / "generator.json", {"generator": generator.name, "settings": settings, "seed": seed,
                                           "plan": spec})
    jobs = [Job(s["name"], (folder / s["split"] / f"{s['name']}.png",), s) for s in unique_sources(rows)]

    def compute(batch: list[Job]) -> list[Done]:
        seeds = [derive_seed(seed, job.id) for job in batch]
        images = generator.generate(seeds, np.stack([prepare(job.data["source"], size) for job in batch]))
        return [Done([Output(job.outputs[0], images[i])],
                     [{"path": job.outputs[0].relative_to(base).as_posix(), "label": 1, "mask": "",
                       "split": job.data["split"], "generator": name, "source": dataset,
                       "source_image": job.data["source"], "seed": seeds[i], "settings": settings}])
                for i, job in enumerate(batch)]

    return run_jobs(jobs, compute, manifest=base / f"manifest-{name}.jsonl", work=base / ".weakloc" / name,
                    shard=shard, desc=name, progress=progress)


def parse_counts(items: Sequence[str]) -> dict[str, int]:
    """``["train=9000", "test=900"]`` or ``["train=9000,test=900"]`` -> {split: count}."""
    counts: dict[str, int] = {}
    for item in (part for text in items for part in text.split(",") if part.strip()):
        split, _, number = item.partition("=")
        split = split.strip()
        if split not in SPLITS:
            raise ConfigError(f"--count takes SPLIT=N with SPLIT one of {', '.join(SPLITS)}, not {item!r}")
        try:
            counts[split] = int(number)
        except ValueError:
            raise ConfigError(f"--count {item!r}: N must be a whole number of images (SPLIT=N, e.g. test=900)") \
                from None
        if counts[split] < 0:
            raise ConfigError(f"--count {item!r}: N must be at least 0")
    if not counts or not sum(counts.values()):
        raise ConfigError("--count: ask for at least one image, e.g. --count test=100")
    return counts


def sample_images(root: str | Path, dataset: str, name: str, sampler, counts: dict[str, int], *, seed: int = 0,
                  batch_size: int = 1, shard: Shard = Shard(), progress: bool = True,
                  source_of: Callable[[str, int], Path] | None = None) -> Report:
    """Fully generated images from noise into ``ROOT/DATASET/fake/NAME/{split}/{split}-NNNNNN.png``
    (``batch_size`` is recorded with the settings, as in :func:`inpaint_plan`); with ``source_of(split, i)``, each
    from that image (the sampler's SDEdit ``strength``), named in the manifest's ``source_image``."""
    base = _dataset_dir(root, dataset)
    folder = base / "fake" / _check_name(name)
    settings = sampler.settings()
    check_spec(folder / "generator.json", {"generator": sampler.name, "settings": settings, "seed": seed,
                                           "batch_size": batch_size, "counts": counts})
    jobs = [Job(f"{split}-{i:06d}", (folder / split / f"{split}-{i:06d}.png",), {"split": split, "index": i})
            for split in SPLITS for i in range(counts.get(split, 0))]

    def compute(batch: list[Job]) -> list[Done]:
        seeds = [derive_seed(seed, job.id) for job in batch]
        sources = [source_of(job.data["split"], job.data["index"]) for job in batch] if source_of else []
        images = sampler.generate(seeds, np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sources])
                                  if sources else None)
        return [Done([Output(job.outputs[0], images[i])],
                     [{"path": job.outputs[0].relative_to(base).as_posix(), "label": 1, "mask": "",
                       "split": job.data["split"], "generator": name, "source": dataset,
                       "source_image": str(sources[i]) if sources else "",
                       "seed": seeds[i], "settings": settings}])
                for i, job in enumerate(batch)]

    return run_jobs(jobs, compute, manifest=base / f"manifest-{name}.jsonl", work=base / ".weakloc" / name,
                    batch_size=batch_size, shard=shard, desc=name, progress=progress)
