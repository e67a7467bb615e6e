"""``weakloc generate ...``: masks, real export, inpainting, full-image variants, sampling.

Every command is resumable (rerun it after an interruption) and sharded (``--shard I/N``, or one rank per
process under ``torchrun -m weakloc.cli generate ...``, which sets RANK / WORLD_SIZE). See docs/generate.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from .common import guarded

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generate datasets: mask plans, RePaint / RePaint-LDM / classical inpainting, full images.")

GENERATORS_HELP = "repaint | repaint-ldm | telea | ns | biharmonic | patchmatch"  # the registry's (checked there)

Plan = Annotated[Path, typer.Option(help="mask plan folder made by `weakloc generate masks`")]
Out = Annotated[Path, typer.Option(help="dataset root: output goes to OUT/DATASET (the DOLOS layout)")]
Dataset = Annotated[str, typer.Option(help="dataset folder name under OUT, e.g. celebahq")]
Seed = Annotated[int, typer.Option(help="run seed; each image's seed derives from (seed, image id)")]
ShardOpt = Annotated[Optional[str], typer.Option(
    help="I/N: this process's shard (default: torchrun's RANK/WORLD_SIZE)")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]
Device = Annotated[str, typer.Option(help="auto (GPU of this rank if any) | cpu | cuda | cuda:N")]
Dtype = Annotated[str, typer.Option(help="UNet/autoencoder weights: float32 | bfloat16 | float16")]
BatchSize = Annotated[int, typer.Option(help="images per UNet call (changing it changes the bits of the output)")]
Steps = Annotated[int, typer.Option(help="diffusion steps (RePaint faces: 250)")]


def _run(fn):
    """Bad input and settings end with one clear message (exit 2), never a traceback; then the report."""
    report = guarded(fn, also=(ValueError,))
    if report is not None:
        typer.echo(report.summary())


def _shard(text: Optional[str]):
    from ..generate.writer import Shard

    return Shard.parse(text)


@app.command()
def masks(images: Annotated[Path, typer.Argument(help="folder of source images (or of train/valid/test folders)")],
          out: Annotated[Path, typer.Option(help="plan folder to write")],
          size: Annotated[int, typer.Option(help="side of the square images and masks, px")] = 256,
          kind: Annotated[str, typer.Option(help="face | strokes | ellipse | superpixels | generic (any of the 3)")]
          = "face",
          per_image: Annotated[int, typer.Option(help="masks per source image (identity)")] = 1,
          annotations: Annotated[Optional[Path], typer.Option(help="CelebAMask-HQ-mask-anno folder (face masks)")]
          = None,
          landmarks: Annotated[bool, typer.Option("--landmarks", help="face parts from landmarks (extra 'landmarks')")]
          = False,
          attributes: Annotated[Optional[str], typer.Option(help="face attributes to draw from (default: all; no "
                                                                 "glasses with landmarks), comma-separated")]
          = None,
          max_dilation: Annotated[int, typer.Option(help="largest dilation kernel for eyes/mouth/nose, px")] = 15,
          area: Annotated[str, typer.Option(help="generic masks: area fraction LOW:HIGH or LOW:HIGH:log")]
          = "0.05:0.4",
          no_face: Annotated[str, typer.Option(help="no face parts found: fallback (generic mask) | error")]
          = "fallback",
          split: Annotated[Optional[str], typer.Option(help="put every image in this split")] = None,
          split_file: Annotated[Optional[Path], typer.Option(help="'NAME SPLIT' lines (list_eval_partition.txt)")]
          = None,
          split_ratios: Annotated[str, typer.Option(help="train,valid,test fractions when nothing else sets it")]
          = "0.8,0.1,0.1",
          limit: Annotated[Optional[int], typer.Option(help="use only the first N sources (sorted by name)")]
          = None,
          seed: Seed = 0, shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Draw masks for source images and write a mask plan that every generator then uses."""
    def go():
        from ..generate.masks.faceparts import parse_attributes
        from ..generate.masks.generic import AreaSpec
        from ..generate.plan import make_plan

        ratios = tuple(float(v) for v in split_ratios.split(","))
        if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6:
            raise ConfigError(f"--split-ratios needs three fractions summing to 1, not {split_ratios!r}")
        return make_plan(images, out, size=size, kind=kind, per_image=per_image, seed=seed, area=AreaSpec.parse(area),
                         annotations=annotations, landmarks=landmarks,
                         attributes=parse_attributes(attributes, ()) or None,
                         max_dilation=max_dilation, no_face=no_face, split=split, split_file=split_file,
                         split_ratios=ratios, limit=limit, shard=_shard(shard), progress=not quiet)
    _run(go)


@app.command()
def real(plan: Plan, out: Out, dataset: Dataset = "celebahq", shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Export the plan's sources as the dataset's reals (OUT/DATASET/real/{split}), preprocessed like the fakes."""
    def go():
        from ..generate.jobs import export_real

        return export_real(plan, out, dataset, shard=_shard(shard), progress=not quiet)
    _run(go)


@app.command()
def inpaint(plan: Plan, out: Out,
            generator: Annotated[str, typer.Option(help=GENERATORS_HELP)],
            dataset: Dataset = "celebahq",
            name: Annotated[Optional[str], typer.Option(help="output folder under fake/ (default: the generator)")]
            = None,
            model: Annotated[Optional[str], typer.Option(help="repaint*: diffusers model folder or hub id")] = None,
            vae: Annotated[Optional[str], typer.Option(help="repaint-ldm: autoencoder, if not inside --model")]
            = None,
            steps: Steps = 250,
            jump_length: Annotated[int, typer.Option(help="RePaint: steps per jump back")] = 10,
            jump_n_sample: Annotated[int, typer.Option(help="RePaint: resamplings (1 = no resampling)")] = 10,
            eta: Annotated[float, typer.Option(help="RePaint noise: 1 = DDPM (RePaint's), 0 = DDIM-like")] = 1.0,
            policy: Annotated[str, typer.Option(help="repaint-ldm outside the mask: paste (source pixels) | decoded")]
            = "paste",
            radius: Annotated[int, typer.Option(help="telea/ns: neighbourhood radius, px")] = 5,
            patch_size: Annotated[int, typer.Option(help="patchmatch: patch size, px")] = 5,
            batch_size: BatchSize = 8, device: Device = "auto", dtype: Dtype = "float32",
            limit: Annotated[Optional[int], typer.Option(help="only the first N masks of the plan")] = None,
            seed: Seed = 0, shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Inpaint every (image, mask) of a plan into OUT/DATASET/fake/NAME/{images,masks}/{split}."""
    def go():
        from ..generate.generators import INPAINTERS, InpaintSettings, build_inpainter
        from ..generate.generators.repaint import LDM_POLICIES
        from ..generate.jobs import inpaint_plan
        from ..generate.plan import read_plan

        # settings and plan first: a model can take minutes to load
        if generator not in INPAINTERS:
            raise ConfigError(f"--generator must be one of {', '.join(INPAINTERS)}, not {generator!r}")
        if policy not in LDM_POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(LDM_POLICIES)}, not {policy!r}")
        if vae and generator != "repaint-ldm":
            raise ConfigError("--vae is for --generator repaint-ldm")
        read_plan(plan)
        inpainter = build_inpainter(generator, InpaintSettings(
            model=model, vae=vae, steps=steps, jump_length=jump_length, jump_n_sample=jump_n_sample, eta=eta,
            policy=policy, radius=radius, patch_size=patch_size, device=device, dtype=dtype))
        batch = min(batch_size, inpainter.max_batch or batch_size)
        return inpaint_plan(plan, out, dataset, name or generator, inpainter, seed=seed, batch_size=batch,
                            shard=_shard(shard), limit=limit, progress=not quiet)
    _run(go)


@app.command()
def full(plan: Plan, out: Out,
         generator: Annotated[str, typer.Option(help="telea | ns | biharmonic")],
         dataset: Dataset = "celebahq",
         name: Annotated[Optional[str], typer.Option(help="output folder under fake/ (default: GENERATOR-full)")]
         = None,
         cell: Annotated[int, typer.Option(help="checkerboard cell of the two regeneration passes, px")] = 3,
         radius: Annotated[int, typer.Option(help="telea/ns: neighbourhood radius, px")] = 3,
         seed: Seed = 0, shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Regenerate every pixel of the plan's sources with a classical inpainter (OUT/DATASET/fake/NAME/{split})."""
    def go():
        from ..generate.generators.classical import ClassicalFull, classical
        from ..generate.jobs import regenerate_plan

        return regenerate_plan(plan, out, dataset, name or f"{generator}-full",
                               ClassicalFull(classical(generator, radius=radius, cell=cell)), seed=seed,
                               shard=_shard(shard), progress=not quiet)
    _run(go)


@app.command()
def sample(out: Out,
           model: Annotated[str, typer.Option(help="diffusers model folder or hub id (UNet2DModel + scheduler)")],
           name: Annotated[str, typer.Option(help="output folder under fake/, e.g. p2")],
           count: Annotated[list[str], typer.Option(help="SPLIT=N, repeatable or comma-separated: test=900")],
           dataset: Dataset = "celebahq",
           vae: Annotated[Optional[str], typer.Option(help="latent model: autoencoder, if not inside --model")] = None,
           latent: Annotated[bool, typer.Option("--latent", help="latent sampling (automatic with a vqvae/vae)")]
           = False,
           sampler: Annotated[str, typer.Option(help="ddpm | ddim")] = "ddim",
           steps: Steps = 50,
           eta: Annotated[float, typer.Option(help="DDIM noise (0 = deterministic after the initial noise)")] = 0.0,
           batch_size: BatchSize = 8, device: Device = "auto", dtype: Dtype = "float32",
           seed: Seed = 0, shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Fully generated images by DDPM/DDIM sampling (the paper's P2 role) into OUT/DATASET/fake/NAME/{split}."""
    def go():
        from ..generate.generators.loading import load_diffusion
        from ..generate.generators.sampling import DiffusionSampler
        from ..generate.jobs import parse_counts, sample_images

        counts = parse_counts(count)
        unet, config, autoencoder, torch_device = load_diffusion(model, vae, device, dtype,
                                                                 latent=True if latent else None)
        sampler_ = DiffusionSampler(unet, config, model, sampler=sampler, steps=steps, eta=eta,
                                    autoencoder=autoencoder, device=torch_device)
        return sample_images(out, dataset, name, sampler_, counts, seed=seed, batch_size=batch_size,
                             shard=_shard(shard), progress=not quiet)
    _run(go)


@app.command("plan-info")
def plan_info(plan: Annotated[Path, typer.Argument(help="mask plan folder")]) -> None:
    """Counts per split and mask kind, and the mask-area distribution of a plan."""
    def go():
        from ..generate.plan import plan_summary

        typer.echo(plan_summary(plan))
    _run(go)
