"""Mask plans (``weakloc generate masks``): which source images, in which split, with which masks.

A **mask plan** fixes, once, which source images are used, in which split, and with which masks
(``PLAN/plan.jsonl`` + ``PLAN/masks/{split}/{id}.png``, black = region to regenerate). Every generator then
runs on the same plan (``jobs.py``), so the generator is the only factor that varies (paper §3.3, Fig. 6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.samples import SPLITS
from ..errors import ConfigError, InputError
from .masks.faceparts import (ATTRIBUTES, MAX_DILATION, annotation_root, celebahq_id, celebamask_attributes,
                              dilation_kernel, draw_attributes, face_part_mask)
from .masks.generic import GENERIC_KINDS, AreaSpec, generic_mask
from .seeds import derive_seed, numpy_rng
from .sources import Source, list_sources, prepare
from .writer import Done, Job, Output, Report, Shard, check_spec, run_jobs

PLAN_FORMAT = 1
MASK_KINDS = ("face",) + GENERIC_KINDS + ("generic",)
NO_FACE_POLICIES = ("fallback", "error")


# ---------------------------------------------------------------- mask plans


def read_plan(plan: str | Path) -> tuple[dict, list[dict]]:
    """(spec, rows) of a finished mask plan."""
    plan = Path(plan)
    spec_file, rows_file = plan / "plan.json", plan / "plan.jsonl"
    if not spec_file.is_file():
        raise InputError(plan, "not a mask plan (no plan.json)", "make one with `weakloc generate masks`")
    if not rows_file.is_file():
        raise InputError(rows_file, "the mask plan is not finished",
                         "run the same `weakloc generate masks` command again (all shards) to finish it")
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    return json.loads(spec_file.read_text()), rows


def _mask_id(name: str, k: int, per_image: int) -> str:
    return name if per_image == 1 else f"{name}-{k}"


@dataclass
class _MaskDrawer:
    """Draws one source's masks: face parts (annotations first, then landmarks) or a generic kind."""

    kind: str
    size: int
    seed: int
    area: AreaSpec
    annotations: Path | None
    detector: object | None  # a landmarks.FaceLandmarkParts, when --landmarks
    attributes: Sequence[str] | None
    max_dilation: int  # px at this plan's size (already scaled from the 256-px value)
    no_face: str

    def parts(self, source: Source, image: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
        if self.kind != "face":
            return {}, ""
        if self.annotations:
            try:
                parts = celebamask_attributes(self.annotations, celebahq_id(source.path), self.size,
                                              self.attributes or ATTRIBUTES)
                return parts, "face-annotation"
            except InputError:
                if self.detector is None:
                    raise
        from .masks.landmarks import LANDMARK_ATTRIBUTES

        return self.detector(image, self.attributes or LANDMARK_ATTRIBUTES), "face-landmarks"

    def __call__(self, source: Source, outputs: Sequence[Path], plan: Path) -> Done:
        image = prepare(source.path, self.size)
        parts, origin = self.parts(source, image)
        if self.kind == "face" and not parts and self.no_face == "error":
            raise InputError(source.path, "no face parts found (no face detected, or no annotated part)",
                             "remove the image, or pass --no-face fallback to give it a generic mask")
        chosen = draw_attributes(sorted(parts), len(outputs), numpy_rng(self.seed, "attributes", source.name))
        files, rows = [], []
        for k, path in enumerate(outputs):
            mask_id = path.stem
            mask_seed = derive_seed(self.seed, "mask", mask_id)
            rng = np.random.default_rng(mask_seed)
            row = {"id": mask_id, "split": source.split, "source": str(source.path.resolve()),
                   "mask": path.relative_to(plan).as_posix(), "mask_seed": mask_seed}
            if chosen:
                mask, dilation = face_part_mask(parts, chosen[k], rng, self.max_dilation)
                row.update(mask_kind=origin, attribute=chosen[k], dilation=dilation)
            else:  # generic kinds, and faces where none was found (--no-face fallback)
                mask, drawn, target = generic_mask("generic" if self.kind == "face" else self.kind, image, rng,
                                                   self.area)
                row.update(mask_kind=drawn, target_area=round(target, 6))
            row["area"] = round(float(mask.mean()), 6)
            files.append(Output(path, mask, mask=True))
            rows.append(row)
        return Done(files, rows)


def make_plan(images: str | Path, out: str | Path, *, size: int = 256, kind: str = "face", per_image: int = 1,
              seed: int = 0, area: AreaSpec = AreaSpec(), annotations: str | Path | None = None,
              landmarks: bool = False, attributes: Sequence[str] | None = None, max_dilation: int = MAX_DILATION,
              no_face: str = "fallback", split: str | None = None, split_file: str | Path | None = None,
              split_ratios: Sequence[float] = (0.8, 0.1, 0.1), limit: int | None = None,
              shard: Shard = Shard(), progress: bool = True) -> Report:
    """Draw ``per_image`` masks for each source image and write the plan (masks + plan.jsonl) to ``out``.

    Face parts come from CelebAMask-HQ ``annotations``; with ``landmarks`` too, images without an annotation
    get landmark parts instead of an error. ``attributes`` defaults to all six for annotations and to all but
    glasses for landmarks (landmarks cannot tell whether glasses are worn). ``max_dilation`` is the largest
    dilation kernel of eyes, mouth and nose at 256 px; it is scaled to ``size`` (:func:`dilation_kernel`)."""
    if kind not in MASK_KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(MASK_KINDS)}, not {kind!r}")
    if kind == "face" and not (annotations or landmarks):
        raise ConfigError("face masks need --annotations (CelebAMask-HQ) or --landmarks")
    if no_face not in NO_FACE_POLICIES:
        raise ConfigError(f"--no-face must be one of {', '.join(NO_FACE_POLICIES)}")
    for option, value, least in (("--size", size, 8), ("--per-image", per_image, 1),
                                 ("--max-dilation", max_dilation, 0), ("--limit", limit, 1)):
        if value is not None and value < least:
            raise ConfigError(f"{option} must be at least {least}, not {value}")
    out = Path(out)
    if annotations:
        annotations = annotation_root(annotations)  # a wrong folder fails now, not as "no annotation" per image
    sources = list_sources(images, split=split, split_file=split_file, split_ratios=split_ratios)
    available = len(sources)
    sources = sources[:limit] if limit else sources
    kernel = dilation_kernel(max_dilation, size)
    spec = {"format": PLAN_FORMAT, "images": str(Path(images).resolve()), "size": size, "kind": kind,
            "per_image": per_image, "seed": seed, "area": str(area),
            "annotations": str(Path(annotations).resolve()) if annotations else None, "landmarks": landmarks,
            "attributes": list(attributes) if attributes else None, "max_dilation": max_dilation,
            "max_dilation_px": kernel,  # at this size (max_dilation is for 256 px)
            "no_face": no_face, "split": split, "split_file": str(Path(split_file).resolve()) if split_file else None,
            "split_ratios": list(split_ratios)}  # not --limit: a longer run extends a shorter one
    check_spec(out / "plan.json", spec)
    jobs = [Job(s.name, tuple(out / "masks" / s.split / f"{_mask_id(s.name, k, per_image)}.png"
                              for k in range(per_image)), {"source": s}) for s in sources]
    detector = None
    if kind == "face" and landmarks:
        from .masks.landmarks import FaceLandmarkParts

        detector = FaceLandmarkParts()
    draw = _MaskDrawer(kind, size, seed, area, annotations, detector, attributes, kernel, no_face)
    try:
        return run_jobs(jobs, lambda batch: [draw(job.data["source"], job.outputs, out) for job in batch],
                        manifest=out / "plan.jsonl", work=out / ".weakloc", shard=shard, desc="masks", unit="image",
                        nouns=("images", "masks"), available=available if limit else None, progress=progress)
    finally:
        if detector is not None:
            detector.close()


def unique_sources(rows: list[dict]) -> list[dict]:
    """One entry per source image of a plan (a plan may hold several masks per source)."""
    seen: dict[str, dict] = {}
    for row in rows:
        name = Path(row["source"]).stem
        if name not in seen:
            seen[name] = {"name": name, "split": row["split"], "source": row["source"]}
    return list(seen.values())


def plan_summary(plan: str | Path) -> str:
    """A short text: masks per split and per kind/attribute, and area quantiles."""
    spec, rows = read_plan(plan)
    lines = [f"plan {plan}: {len(rows)} masks of {len(unique_sources(rows))} images at {spec['size']} px, "
             f"kind {spec['kind']}, seed {spec['seed']}"]
    by_split = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    lines.append("splits: " + ", ".join(f"{s} {n}" for s, n in by_split.items() if n))
    kinds: dict[str, list[float]] = {}
    for r in rows:
        kinds.setdefault(r["mask_kind"] + (f":{r['attribute']}" if r.get("attribute") else ""), []).append(r["area"])
    lines.append("kind                      masks   area p10   p50   p90")
    for key, areas in sorted(kinds.items()):
        p10, p50, p90 = np.percentile(areas, [10, 50, 90])
        lines.append(f"{key:<25} {len(areas):>5}   {p10:8.3f} {p50:5.3f} {p90:5.3f}")
    return "\n".join(lines)
