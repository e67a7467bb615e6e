"""``weakloc generate ...``: masks, real export, inpainting, full-image variants, sampling.

Every command is resumable (rerun it after an interruption) and sharded (``--shard I/N``, numbered from 0 like
torchrun ranks, or one rank per process under ``torchrun -m weakloc.cli generate ...``, which sets RANK /
WORLD_SIZE). Numeric options are checked before anything is loaded. See docs/generate.md.
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
    help="I/N: run shard I of N, numbered from 0 like torchrun ranks (two shards: 0/2 and 1/2); default: "
         "torchrun's RANK/WORLD_SIZE, else the whole run")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]
Device = Annotated[str, typer.Option(help="auto (GPU of this rank if any) | cpu | cuda | cuda:N")]
ForwardPrecision = Annotated[str, typer.Option(
    help="UNet/autoencoder forward passes: auto (bf16 autocast + channels_last where the hardware runs bf16 "
         "natively, else fp32) | bf16 | fp32")]
Dtype = Annotated[str, typer.Option(help="UNet/autoencoder weights: float32 | bfloat16 | float16")]
BatchSize = Annotated[int, typer.Option(help="images per UNet call; recorded with the settings (it may change "
                                             "the output's bits), so a resume must use the same")]
RepaintSteps = Annotated[int, typer.Option(help="RePaint denoising steps, before jumps (RePaint's faces: 250); at "
                                                "most the model's training timesteps")]
SamplingSteps = Annotated[int, typer.Option(help="DDPM/DDIM sampling steps (DDIM: 50-100 is usual); at most the "
                                                 "model's training timesteps")]
Limit = Annotated[Optional[int], typer.Option(help="only the first N masks of the plan (a partial run; a later run "
                                                   "without it continues)")]


def _run(fn):
    """Bad input and settings end with one clear message (exit 2), never a traceback; then the report."""
    report = guarded(fn, also=(ValueError,))
    if report is not None:
        typer.echo(report.summary())


def _model(name: Optional[str]) -> Optional[str]:
    """``builtin:NAME`` is a diffusion model shipped with weakloc (ddpm-photos-a, ddpm-photos-b, ldm-photos-a);
    anything else is a folder or a hub id, as given."""
    if not name or not name.startswith("builtin:"):
        return name
    from ..generate.builtin.models import SHIPPED, shipped_model

    key = name.removeprefix("builtin:")
    if key not in SHIPPED:
        raise ConfigError(f"--model {name}: weakloc ships {', '.join('builtin:' + k for k in SHIPPED)}")
    return str(shipped_model(key))


def _shard(text: Optional[str]):
    from ..generate.writer import Shard

    return Shard.parse(text)


def _at_least(least: float, **options: Optional[float]) -> None:
    """ConfigError naming the first option (keyword = option name) below ``least``; None: not given."""
    for name, value in options.items():
        if value is not None and not value >= least:  # `not >=`: NaN fails too
            raise ConfigError(f"--{name.replace('_', '-')} must be at least {least}, not {value}")


def _check_eta(eta: float) -> None:
    if not 0.0 <= eta <= 1.0:
        raise ConfigError(f"--eta must be between 0 and 1 (1 = DDPM, 0 = deterministic DDIM), not {eta}")


def _check_model_steps(steps: int, scheduler_config: Optional[dict], model: Optional[str]) -> None:
    from ..generate.generators.loading import check_steps

    if scheduler_config is not None:
        check_steps(steps, scheduler_config, str(model))


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
          max_dilation: Annotated[int, typer.Option(help="largest dilation kernel for eyes/mouth/nose, px at 256 px "
                                                         "(the paper's 15); scaled with --size: 4 px at 64 px")]
          = 15,
          area: Annotated[str, typer.Option(help="generic masks: area fraction LOW:HIGH or LOW:HIGH:log")]
          = "0.05:0.4",
          no_face: Annotated[str, typer.Option(help="no face parts found: fallback (generic mask) | error")]
          = "fallback",
          split: Annotated[Optional[str], typer.Option(help="put every image in this split")] = None,
          split_file: Annotated[Optional[Path], typer.Option(help="'NAME SPLIT' lines (list_eval_partition.txt)")]
          = None,
          split_ratios: Annotated[str, typer.Option(help="train,valid,test fractions when nothing else sets it")]
          = "0.8,0.1,0.1",
          limit: Annotated[Optional[int], typer.Option(help="use only the first N sources (sorted by name; a "
                                                           "partial plan, which a later run without it completes)")]
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
            model: Annotated[Optional[str], typer.Option(
                help="repaint*: diffusers model folder, hub id, or builtin:NAME (a model shipped with weakloc: "
                     "ddpm-photos-a, ddpm-photos-b, ldm-photos-a)")] = None,
            vae: Annotated[Optional[str], typer.Option(help="repaint-ldm: autoencoder, if not inside --model")]
            = None,
            steps: RepaintSteps = 250,
            jump_length: Annotated[int, typer.Option(help="RePaint: steps per jump back")] = 10,
            jump_n_sample: Annotated[int, typer.Option(help="RePaint: resamplings (1 = no resampling)")] = 10,
            eta: Annotated[float, typer.Option(help="RePaint noise: 1 = DDPM (RePaint's), 0 = DDIM-like")] = 1.0,
            policy: Annotated[str, typer.Option(
                help="repaint-ldm: decoded (the paper's dec(x^): decoder output, truth = the mask) | paste "
                     "(source pixels outside the mask) | decoded-whole (truth = every pixel)")] = "decoded",
            radius: Annotated[int, typer.Option(help="telea/ns: neighbourhood radius, px")] = 5,
            patch_size: Annotated[int, typer.Option(help="patchmatch: patch size, px")] = 5,
            batch_size: BatchSize = 8, device: Device = "auto", dtype: Dtype = "float32",
            precision: ForwardPrecision = "auto",
            limit: Limit = None,
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
        _at_least(1, steps=steps, jump_length=jump_length, jump_n_sample=jump_n_sample, radius=radius,
                  patch_size=patch_size, batch_size=batch_size, limit=limit)
        _check_eta(eta)
        shard_ = _shard(shard)
        read_plan(plan)
        inpainter = build_inpainter(generator, InpaintSettings(
            model=_model(model), vae=_model(vae), steps=steps, jump_length=jump_length, jump_n_sample=jump_n_sample,
            eta=eta,
            policy=policy, radius=radius, patch_size=patch_size, device=device, dtype=dtype,
            precision=precision))
        _check_model_steps(steps, getattr(inpainter, "scheduler_config", None), model)
        batch = min(batch_size, inpainter.max_batch or batch_size)
        return inpaint_plan(plan, out, dataset, name or generator, inpainter, seed=seed, batch_size=batch,
                            shard=shard_, limit=limit, progress=not quiet)
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

        _at_least(1, cell=cell, radius=radius)
        return regenerate_plan(plan, out, dataset, name or f"{generator}-full",
                               ClassicalFull(classical(generator, radius=radius, cell=cell)), seed=seed,
                               shard=_shard(shard), progress=not quiet)
    _run(go)


@app.command()
def sample(out: Out,
           model: Annotated[str, typer.Option(help="diffusers model folder or hub id (UNet2DModel + scheduler), or "
                                                   "builtin:NAME (ddpm-photos-a, ddpm-photos-b, ldm-photos-a)")],
           name: Annotated[str, typer.Option(help="output folder under fake/, e.g. p2")],
           count: Annotated[list[str], typer.Option(help="SPLIT=N, repeatable or comma-separated: test=900")],
           dataset: Dataset = "celebahq",
           vae: Annotated[Optional[str], typer.Option(help="latent model: autoencoder, if not inside --model")] = None,
           latent: Annotated[bool, typer.Option("--latent", help="latent sampling (automatic with a vqvae/vae)")]
           = False,
           sampler: Annotated[str, typer.Option(help="ddpm (ancestral, as P2 samples) | ddim")] = "ddpm",
           steps: SamplingSteps = 50,
           eta: Annotated[float, typer.Option(help="DDIM noise (0 = deterministic after the initial noise)")] = 0.0,
           batch_size: BatchSize = 8, device: Device = "auto", dtype: Dtype = "float32",
            precision: ForwardPrecision = "auto",
           seed: Seed = 0, shard: ShardOpt = None, quiet: Quiet = False) -> None:
    """Fully generated images by DDPM/DDIM sampling (the paper's P2 role) into OUT/DATASET/fake/NAME/{split}."""
    def go():
        from ..generate.generators.loading import load_diffusion
        from ..generate.generators.sampling import DiffusionSampler
        from ..generate.jobs import parse_counts, sample_images

        counts = parse_counts(count)
        _at_least(1, steps=steps, batch_size=batch_size)
        _check_eta(eta)
        shard_ = _shard(shard)
        source = _model(model)
        unet, config, autoencoder, torch_device = load_diffusion(source, _model(vae), device, dtype,
                                                                 latent=True if latent else None)
        _check_model_steps(steps, config, model)
        sampler_ = DiffusionSampler(unet, config, model, sampler=sampler, steps=steps, eta=eta,
                                    autoencoder=autoencoder, device=torch_device, precision=precision)
        return sample_images(out, dataset, name, sampler_, counts, seed=seed, batch_size=batch_size,
                             shard=shard_, progress=not quiet)
    _run(go)


GdInt = Annotated[Optional[int], typer.Option(help="custom: guided-diffusion flag of the same name")]
GdText = Annotated[Optional[str], typer.Option(help="custom: guided-diffusion flag of the same name")]
GdBool = Annotated[Optional[bool], typer.Option(help="custom: guided-diffusion flag of the same name")]


@app.command("import-adm")
def import_adm(checkpoint: Annotated[Path, typer.Argument(help="guided-diffusion (ADM) checkpoint: a state dict of "
                                                               "its UNetModel, e.g. celebahq_p2.pt")],
               config: Annotated[str, typer.Option(help="p2-celebahq | p2-ffhq | repaint-celeba (the published "
                                                        "flags) | custom (guided-diffusion's defaults + the flags "
                                                        "below)")],
               out: Annotated[Path, typer.Option(help="model folder to write (UNet2DModel + scheduler config)")],
               image_size: GdInt = None, num_channels: GdInt = None, num_res_blocks: GdInt = None,
               channel_mult: GdText = None, attention_resolutions: GdText = None, num_heads: GdInt = None,
               num_head_channels: GdInt = None, num_heads_upsample: GdInt = None, resblock_updown: GdBool = None,
               use_scale_shift_norm: GdBool = None, learn_sigma: GdBool = None,
               use_new_attention_order: GdBool = None, diffusion_steps: GdInt = None,
               noise_schedule: Annotated[Optional[str], typer.Option(help="custom: linear | cosine")] = None,
               overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a non-empty --out")] = False
               ) -> None:
    """Convert a guided-diffusion checkpoint (P2, RePaint) into a diffusers model folder for inpaint / sample.

    Read as tensors only (nothing in the file is run); refused, naming the first mismatching tensor, unless it
    has exactly the architecture of --config. See docs/generate.md."""
    def go():
        from ..generate.generators.adm import import_adm as convert

        flags = dict(image_size=image_size, num_channels=num_channels, num_res_blocks=num_res_blocks,
                     channel_mult=channel_mult, attention_resolutions=attention_resolutions, num_heads=num_heads,
                     num_head_channels=num_head_channels, num_heads_upsample=num_heads_upsample,
                     resblock_updown=resblock_updown, use_scale_shift_norm=use_scale_shift_norm,
                     learn_sigma=learn_sigma, use_new_attention_order=use_new_attention_order,
                     diffusion_steps=diffusion_steps, noise_schedule=noise_schedule)
        done = convert(checkpoint, out, config, flags, overwrite=overwrite)
        card = done.card
        typer.echo(f"imported {checkpoint} ({card['source']['tensors']} tensors, sha256 "
                   f"{card['source']['sha256'][:12]}...) -> {done.folder} in {done.seconds:.1f} s")
        typer.echo(f"  {config}: {card['parameters_millions']}M parameters, {card['unet']['out_channels']} output "
                   f"channels, variance {card['scheduler']['variance_type']}; flags: {card['guided_diffusion_flags']}")
        typer.echo(f"  use: weakloc generate inpaint --generator repaint --model {done.folder} ...; "
                   f"weakloc generate sample --model {done.folder} --steps 250 ...")
    _run(go)


@app.command("plan-info")
def plan_info(plan: Annotated[Path, typer.Argument(help="mask plan folder")]) -> None:
    """Counts per split and mask kind, and the mask-area distribution of a plan."""
    def go():
        from ..generate.plan import plan_summary

        typer.echo(plan_summary(plan))
    _run(go)


# ------------------------------------------------------------------ training diffusion models

Images = Annotated[Path, typer.Argument(help="folder of training images (searched recursively)")]
TrainOut = Annotated[Path, typer.Option(help="model folder to write (diffusers pipeline layout; resumes)")]
Size = Annotated[Optional[int], typer.Option(help="training crop side, px  \\[default: 64]")]
Resize = Annotated[Optional[int], typer.Option(help="first resize each image's shorter side to this, px (bicubic)")]
Widths = Annotated[Optional[str], typer.Option(help="UNet block widths  \\[default: 32,64,128 (CPU); "
                                                    "128,256,256,256 (GPU)]")]
Layers = Annotated[Optional[int], typer.Option(help="ResNet layers per UNet block  \\[default: 1 (CPU); 2 (GPU)]")]
Attention = Annotated[bool, typer.Option(help="self-attention at the UNet's lowest resolution (--no-attention: "
                                              "fully convolutional, runs at any image size)")]
TrainSteps = Annotated[Optional[int], typer.Option(help="optimizer steps  \\[default: 20000 (CPU); 100000 (GPU)]; "
                                                        "raising it later continues the run")]
TrainBatch = Annotated[Optional[int], typer.Option(help="crops per step  \\[default: 32 (CPU); 128 (GPU)]")]
Lr = Annotated[Optional[float], typer.Option(help="Adam learning rate, constant after warmup  \\[default: 2e-4]")]
Warmup = Annotated[int, typer.Option(help="linear learning-rate warmup, steps")]
Ema = Annotated[float, typer.Option(help="EMA decay of the exported weights")]
Every = Annotated[int, typer.Option(help="checkpoint (and export + sample grid) every N steps")]
SampleSteps = Annotated[int, typer.Option(help="ancestral DDPM steps for the sample grid")]
Precision = Annotated[str, typer.Option(help="auto (bf16 autocast where the hardware has it) | bf16 | fp32")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="replace a run folder holding other settings")]


def _widths(text: Optional[str], option: str):
    from ..generate.training.config import parse_widths

    return parse_widths(text, option)


@app.command("train-ddpm")
def train_ddpm(images: Images, out: TrainOut, size: Size = None, resize: Resize = None, channels: Widths = None,
               layers_per_block: Layers = None, attention: Attention = True, steps: TrainSteps = None,
               batch_size: TrainBatch = None, lr: Lr = None, warmup: Warmup = 200, ema_decay: Ema = 0.999,
               checkpoint_every: Every = 500, sample_steps: SampleSteps = 100, precision: Precision = "auto",
               device: Device = "auto", seed: Seed = 0, overwrite: Overwrite = False, quiet: Quiet = False) -> None:
    """Train a pixel-space DDPM (UNet2DModel + DDPMScheduler) on random crops and flips of a folder of images."""
    def go():
        from ..generate.training import DiffusionTrainConfig, train_ddpm as train

        config = DiffusionTrainConfig(size=size, resize=resize, channels=_widths(channels, "--channels"),
                                      layers_per_block=layers_per_block, attention=attention, steps=steps,
                                      batch_size=batch_size, lr=lr, warmup=warmup, ema_decay=ema_decay,
                                      checkpoint_every=checkpoint_every, sample_steps=sample_steps, seed=seed,
                                      precision=precision, device=device)
        config.validate()
        folder = train(images, out, config, overwrite=overwrite, progress=not quiet)
        typer.echo(f"model: {folder} (weakloc generate inpaint --generator repaint --model {folder}); "
                   f"samples: {folder / 'samples.png'}")
    _run(go)


@app.command("train-latent")
def train_latent(images: Images, out: TrainOut, size: Size = None, resize: Resize = None,
                 autoencoder: Annotated[str, typer.Option(help="kl (AutoencoderKL) | vq (VQModel)")] = "kl",
                 ae_channels: Annotated[Optional[str], typer.Option(
                     help="autoencoder widths; it downsamples 2**(n-1) times  \\[default: 32,64,64 (CPU)]")] = None,
                 ae_steps: Annotated[Optional[int], typer.Option(help="autoencoder steps  \\[default: 3000 (CPU)]")]
                 = None,
                 ae_lr: Annotated[float, typer.Option(help="autoencoder learning rate")] = 1e-3,
                 ae_attention: Annotated[bool, typer.Option(
                     help="self-attention in the autoencoder's middle block (off: a local decoder, so latent "
                          "edits change pixels only near the edited cells)")] = False,
                 latent_channels: Annotated[Optional[int], typer.Option(help="latent channels  \\[default: 4]")] = None,
                 kl_weight: Annotated[float, typer.Option(help="kl: weight of the KL term")] = 1e-6,
                 channels: Widths = None, layers_per_block: Layers = None, attention: Attention = True,
                 steps: TrainSteps = None, batch_size: TrainBatch = None, lr: Lr = None, warmup: Warmup = 200,
                 ema_decay: Ema = 0.999, checkpoint_every: Every = 500, sample_steps: SampleSteps = 100,
                 precision: Precision = "auto", device: Device = "auto", seed: Seed = 0,
                 overwrite: Overwrite = False, quiet: Quiet = False) -> None:
    """Train an autoencoder (VQModel or AutoencoderKL), then a DDPM on its latents (RePaint-LDM's model)."""
    def go():
        from ..generate.training import LatentTrainConfig, train_latent as train

        config = LatentTrainConfig(size=size, resize=resize, channels=_widths(channels, "--channels"),
                                   layers_per_block=layers_per_block, attention=attention, steps=steps,
                                   batch_size=batch_size, lr=lr, warmup=warmup, ema_decay=ema_decay,
                                   checkpoint_every=checkpoint_every, sample_steps=sample_steps, seed=seed,
                                   precision=precision, device=device, autoencoder=autoencoder,
                                   ae_channels=_widths(ae_channels, "--ae-channels"), ae_steps=ae_steps, ae_lr=ae_lr,
                                   ae_attention=ae_attention,
                                   latent_channels=latent_channels, kl_weight=kl_weight)
        config.validate()
        folder = train(images, out, config, overwrite=overwrite, progress=not quiet)
        typer.echo(f"model: {folder} (weakloc generate inpaint --generator repaint-ldm --model {folder}); "
                   f"samples: {folder / 'samples.png'}")
    _run(go)


@app.command("builtin-sources")
def builtin_sources(out: Annotated[Path, typer.Option(help="folder to write SOURCE/ training images into")],
                    source: Annotated[Optional[list[str]], typer.Option(help="photos-a | photos-b (default: both)")]
                    = None,
                    side: Annotated[int, typer.Option(help="shorter side of each tile, px")] = 80) -> None:
    """Write the training tiles of the built-in benchmark's sources: what its shipped generators were trained on."""
    def go():
        from ..generate.builtin.photos import SOURCES, photo_source, write_training_images

        for name in source or list(SOURCES):
            try:
                chosen = photo_source(name)
            except KeyError as exc:
                raise ConfigError(str(exc.args[0])) from None
            files = write_training_images(chosen, out / name, side=side)
            typer.echo(f"{name}: {len(files)} images in {out / name}")
    _run(go)
