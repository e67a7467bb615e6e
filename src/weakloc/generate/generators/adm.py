"""guided-diffusion (ADM) checkpoints -> diffusers ``UNet2DModel`` folders: the paper's own generators.

The paper's data came from RePaint on the P2 models (``celebahq_p2.pt``, ``ffhq_p2.pt``) and from sampling those
models; RePaint's own face model is the same kind of file. Each is a plain state dict of openai's ``UNetModel``.
diffusers' ``UNet2DModel`` expresses that architecture exactly (its DDPM/ADM port; diffusers'
``scripts/convert_consistency_to_diffusers.py`` converts the same UNet design), so the conversion is a renaming:

- ``time_embed.{0,2}`` -> ``time_embedding.linear_{1,2}``; ``input_blocks.0.0`` -> ``conv_in``;
  ``out.{0,2}`` -> ``conv_norm_out`` / ``conv_out``.
- ``input_blocks.N`` walk the levels in order: per level ``num_res_blocks`` entries (a ResBlock at ``.0``, its
  attention at ``.1`` where the level has one) -> ``down_blocks.L.resnets.J`` / ``.attentions.J``, then (not on
  the last level) one downsampler -> ``down_blocks.L.downsamplers.0`` (a ResBlock with ``--resblock_updown``,
  else the strided conv ``.op`` -> ``.conv``).
- ``middle_block.{0,1,2}`` -> ``mid_block.resnets.0``, ``mid_block.attentions.0``, ``mid_block.resnets.1``.
- ``output_blocks.N`` walk the levels from the deepest: per level ``num_res_blocks + 1`` entries -> ``up_blocks.I
  .resnets.J`` (+ ``.attentions.J``); the level's last entry also holds the upsampler (after the attention, if
  any) -> ``up_blocks.I.upsamplers.0`` (a ResBlock, or the conv ``.conv``).
- Inside a ResBlock: ``in_layers.0`` -> ``norm1``, ``in_layers.2`` -> ``conv1``, ``emb_layers.1`` ->
  ``time_emb_proj``, ``out_layers.0`` -> ``norm2``, ``out_layers.3`` -> ``conv2``, ``skip_connection`` ->
  ``conv_shortcut``; ``--use_scale_shift_norm`` is diffusers' ``resnet_time_scale_shift="scale_shift"``.
- Inside an attention block: ``norm`` -> ``group_norm``, ``proj_out`` -> ``to_out.0`` (1-D conv -> linear: the
  trailing 1 dropped); ``qkv`` is split into ``to_q`` / ``to_k`` / ``to_v``. guided-diffusion's default (legacy)
  order interleaves them per head ([head, q|k|v, channel]); with ``--use_new_attention_order`` they are three
  blocks ([q|k|v, head, channel], the consistency models' order).

Reading never runs code from the file (``torch.load(weights_only=True)``), and a file is converted only when it
holds exactly the tensors, of exactly the shapes, the chosen architecture has; the first mismatch is named.
With ``--learn_sigma`` the UNet has 6 output channels (noise, then the variance interpolation ``v``); the
scheduler config written beside it says ``variance_type="learned_range"``, which is how P2 and RePaint sample
(guided-diffusion's ``LEARNED_RANGE``: log sigma^2 = (v+1)/2 log beta_t + (1-v)/2 log beta~_t), and
``timestep_spacing="linspace"``, guided-diffusion's ``--timestep_respacing 250`` grid (round(i * 999 / 249)).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from ...errors import ConfigError, InputError
from ...files import file_sha256, load_torch_weights, write_json

# guided-diffusion's script defaults (script_util.model_and_diffusion_defaults): what `custom` starts from
GD_DEFAULTS = dict(image_size=64, num_channels=128, num_res_blocks=2, channel_mult="", attention_resolutions="16,8",
                   num_heads=4, num_head_channels=-1, num_heads_upsample=-1, resblock_updown=False,
                   use_scale_shift_norm=True, learn_sigma=False, use_new_attention_order=False,
                   diffusion_steps=1000, noise_schedule="linear")
DEFAULT_MULT = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
GROUPS = 32  # guided-diffusion's normalization(): GroupNorm(32, ch), eps 1e-5
FIX = "re-save it as a plain state dict: torch.save(model.state_dict(), PATH)"


@dataclass(frozen=True)
class AdmFlags:
    """The architecture and noise-schedule flags of guided-diffusion's scripts (their names and meanings)."""

    image_size: int = 64
    num_channels: int = 128
    num_res_blocks: int = 2
    channel_mult: str = ""  # "" = guided-diffusion's default for image_size
    attention_resolutions: str = "16,8"
    num_heads: int = 4
    num_head_channels: int = -1  # > 0: heads of this many channels (num_heads unused)
    num_heads_upsample: int = -1  # -1: num_heads
    resblock_updown: bool = False
    use_scale_shift_norm: bool = True
    learn_sigma: bool = False
    use_new_attention_order: bool = False
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"

    def line(self) -> str:
        """The flags as guided-diffusion's command line spells them."""
        return " ".join(f"--{k} {v}" for k, v in asdict(self).items() if v != "")  # "" = the default

    def multipliers(self) -> tuple[float, ...]:
        if self.channel_mult:
            try:
                return tuple(int(m) for m in self.channel_mult.split(","))
            except ValueError:
                raise ConfigError(f"--channel-mult must be comma-separated integers, not "
                                  f"{self.channel_mult!r}") from None
        if self.image_size not in DEFAULT_MULT:
            raise ConfigError(f"guided-diffusion has no default channel_mult for image_size {self.image_size} "
                              f"(only {', '.join(map(str, DEFAULT_MULT))}): pass --channel-mult")
        return DEFAULT_MULT[self.image_size]

    def channels(self) -> list[int]:
        return [int(m * self.num_channels) for m in self.multipliers()]

    def attention_levels(self) -> set[int]:
        """Levels (0 = full resolution) with self-attention: guided-diffusion's ``ds in attention_ds``."""
        try:
            ds = {self.image_size // int(r) for r in self.attention_resolutions.split(",") if r.strip()}
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"--attention-resolutions must be comma-separated sizes, not "
                              f"{self.attention_resolutions!r}") from None
        return {level for level in range(len(self.multipliers())) if 2 ** level in ds}

    def head_dim(self) -> int:
        """diffusers' ``attention_head_dim``: one head size for every attention layer."""
        chans = self.channels()
        levels = self.attention_levels()
        used = [(chans[lv], self.num_heads) for lv in levels] + [(chans[-1], self.num_heads)]
        up = self.num_heads if self.num_heads_upsample == -1 else self.num_heads_upsample
        used += [(chans[lv], up) for lv in levels]
        if self.num_head_channels > 0:
            bad = sorted({c for c, _ in used if c % self.num_head_channels})
            if bad:
                raise ConfigError(f"attention widths {bad} are not multiples of --num-head-channels "
                                  f"{self.num_head_channels}")
            return self.num_head_channels
        if any(heads <= 0 or c % heads for c, heads in used):
            raise ConfigError(f"attention widths {sorted({c for c, _ in used})} do not split into --num-heads "
                              f"{self.num_heads} (--num-heads-upsample {self.num_heads_upsample}) equal heads")
        sizes = {c // heads for c, heads in used}
        if len(sizes) != 1:
            raise ConfigError(f"with --num-heads (no --num-head-channels) the attention heads here have different "
                              f"sizes ({sorted(sizes)} channels); diffusers' UNet2DModel has one head size for all "
                              "layers, so this architecture cannot be converted")
        return sizes.pop()

    def validate(self) -> None:
        if self.image_size < 8 or self.num_channels < 1 or self.num_res_blocks < 1 or self.diffusion_steps < 2:
            raise ConfigError("--image-size, --num-channels, --num-res-blocks and --diffusion-steps must be positive "
                              "(image size at least 8, at least 2 diffusion steps)")
        if self.noise_schedule not in ("linear", "cosine"):
            raise ConfigError(f"--noise-schedule must be linear or cosine, not {self.noise_schedule!r}")
        bad = [c for c in self.channels() if c % GROUPS]
        if bad:
            raise ConfigError(f"block widths {bad} are not multiples of {GROUPS} (guided-diffusion's GroupNorm "
                              "groups): check --num-channels and --channel-mult")
        if self.image_size % 2 ** (len(self.multipliers()) - 1):
            raise ConfigError(f"--image-size {self.image_size} is not divisible by the UNet's "
                              f"{2 ** (len(self.multipliers()) - 1)}x downsampling")
        self.head_dim()


P2 = AdmFlags(image_size=256, num_channels=128, num_res_blocks=1, attention_resolutions="16", num_heads=4,
              num_head_channels=64, resblock_updown=True, use_scale_shift_norm=True, learn_sigma=True)
REPAINT_FACE = AdmFlags(image_size=256, num_channels=256, num_res_blocks=2, attention_resolutions="32,16,8",
                        num_heads=4, num_head_channels=64, resblock_updown=True, use_scale_shift_norm=True,
                        learn_sigma=True)


@dataclass(frozen=True)
class Published:
    flags: AdmFlags
    file: str
    source: str


CONFIGS: dict[str, Published] = {
    "p2-celebahq": Published(P2, "celebahq_p2.pt", "jychoi118/P2-weighting README (sampling command); 93.6M "
                                                   "parameters, 1000 linear-schedule steps, sampled with "
                                                   "--timestep_respacing 250"),
    "p2-ffhq": Published(P2, "ffhq_p2.pt", "jychoi118/P2-weighting README (same flags as celebahq_p2.pt)"),
    "repaint-celeba": Published(REPAINT_FACE, "celeba256_250000.pt",
                                "andreas128/RePaint confs/face_example.yml and test_c256_*.yml (CelebA-HQ 256 face "
                                "model; 250 respaced steps, jump_length 10, jump_n_sample 10)"),
}
CONFIG_NAMES = (*CONFIGS, "custom")


def flags_for(config: str, overrides: dict | None = None) -> AdmFlags:
    """The flags of a named config, or guided-diffusion's defaults with ``overrides`` for ``custom`` (flags are
    only for ``custom``: a named config is the published one)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if config not in CONFIG_NAMES:
        raise ConfigError(f"--config must be one of {', '.join(CONFIG_NAMES)}, not {config!r}")
    if config != "custom":
        if overrides:
            given = ", ".join("--" + k.replace("_", "-") for k in overrides)
            raise ConfigError(f"{given}: architecture flags are for --config custom; --config {config} is the "
                              f"published architecture ({CONFIGS[config].flags.line()})")
        return CONFIGS[config].flags
    known = {f.name for f in fields(AdmFlags)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown guided-diffusion flags: {', '.join(sorted(unknown))}")
    flags = replace(AdmFlags(**GD_DEFAULTS), **overrides)
    flags.validate()
    return flags


# ------------------------------------------------------------------ diffusers' side

def unet_kwargs(flags: AdmFlags) -> dict:
    """``UNet2DModel(**kwargs)`` of the same architecture."""
    flags.validate()
    chans = flags.channels()
    attn = flags.attention_levels()
    plain_down, plain_up = ("ResnetDownsampleBlock2D", "ResnetUpsampleBlock2D") if flags.resblock_updown \
        else ("DownBlock2D", "UpBlock2D")
    resample = "resnet" if flags.resblock_updown else "conv"
    return {
        "sample_size": flags.image_size, "in_channels": 3, "out_channels": 6 if flags.learn_sigma else 3,
        "layers_per_block": flags.num_res_blocks, "block_out_channels": chans,
        "down_block_types": ["AttnDownBlock2D" if lv in attn else plain_down for lv in range(len(chans))],
        "up_block_types": ["AttnUpBlock2D" if lv in attn else plain_up for lv in reversed(range(len(chans)))],
        "downsample_type": resample, "upsample_type": resample, "downsample_padding": 1,
        "attention_head_dim": flags.head_dim(), "norm_num_groups": GROUPS, "attn_norm_num_groups": GROUPS,
        "norm_eps": 1e-5, "act_fn": "silu", "flip_sin_to_cos": True, "freq_shift": 0,
        "resnet_time_scale_shift": "scale_shift" if flags.use_scale_shift_norm else "default",
        "time_embedding_type": "positional", "center_input_sample": False, "add_attention": True,
    }


def scheduler_config(flags: AdmFlags) -> dict:
    """A DDPMScheduler config of the same noise schedule; guided-diffusion samples with clipped x0, and without
    ``--learn_sigma`` with its default FIXED_LARGE variance (beta_t)."""
    scale = 1000 / flags.diffusion_steps  # guided-diffusion's linear schedule scales with the step count
    schedule = ({"beta_schedule": "linear", "beta_start": scale * 1e-4, "beta_end": scale * 0.02}
                if flags.noise_schedule == "linear" else {"beta_schedule": "squaredcos_cap_v2"})
    return {"num_train_timesteps": flags.diffusion_steps, **schedule,
            "variance_type": "learned_range" if flags.learn_sigma else "fixed_large",
            "clip_sample": True, "prediction_type": "epsilon", "timestep_spacing": "linspace"}


def _meta_unet(flags: AdmFlags):
    from diffusers import UNet2DModel

    with torch.device("meta"):  # shapes only: no memory, no random init
        return UNet2DModel(**unet_kwargs(flags))


# ------------------------------------------------------------------ the key mapping

@dataclass(frozen=True)
class Rule:
    """One tensor of the file: its name, what it becomes, and how (``copy``; ``squeeze`` a 1-D conv's trailing 1;
    ``qkv``: split into to_q / to_k / to_v, in guided-diffusion's ``order``)."""

    old: str
    new: tuple[str, ...]
    how: str = "copy"
    heads: int = 1
    order: str = "legacy"


def _pair(old: str, new: str, how: str = "copy") -> list[Rule]:
    return [Rule(f"{old}.{p}", (f"{new}.{p}",), how) for p in ("weight", "bias")]


def _resblock(old: str, new: str, skip: bool) -> list[Rule]:
    names = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
             ("out_layers.0", "norm2"), ("out_layers.3", "conv2")] + ([("skip_connection", "conv_shortcut")]
                                                                      if skip else [])
    return [r for a, b in names for r in _pair(f"{old}.{a}", f"{new}.{b}")]


def _attention(old: str, new: str, heads: int, order: str) -> list[Rule]:
    qkv = [Rule(f"{old}.qkv.{p}", tuple(f"{new}.to_{x}.{p}" for x in "qkv"), "qkv", heads, order)
           for p in ("weight", "bias")]
    return _pair(f"{old}.norm", f"{new}.group_norm") + qkv + _pair(f"{old}.proj_out", f"{new}.to_out.0", "squeeze")


def key_rules(flags: AdmFlags, target: dict[str, torch.Size]) -> list[Rule]:
    """Every tensor of a guided-diffusion UNet of ``flags``, in its state dict's order, with its diffusers name(s);
    ``target``: the diffusers model's shapes (a ResBlock has a skip conv exactly where diffusers' has one)."""
    chans, attn, levels = flags.channels(), flags.attention_levels(), len(flags.channels())
    order = "new" if flags.use_new_attention_order else "legacy"
    head = flags.head_dim()

    def res(old: str, new: str) -> list[Rule]:
        return _resblock(old, new, f"{new}.conv_shortcut.weight" in target)

    def att(old: str, new: str, width: int) -> list[Rule]:
        return _attention(old, new, width // head, order)

    rules = _pair("time_embed.0", "time_embedding.linear_1") + _pair("time_embed.2", "time_embedding.linear_2")
    rules += _pair("input_blocks.0.0", "conv_in")
    n = 1
    for level in range(levels):
        for j in range(flags.num_res_blocks):
            rules += res(f"input_blocks.{n}.0", f"down_blocks.{level}.resnets.{j}")
            if level in attn:
                rules += att(f"input_blocks.{n}.1", f"down_blocks.{level}.attentions.{j}", chans[level])
            n += 1
        if level != levels - 1:
            down = f"down_blocks.{level}.downsamplers.0"
            rules += (res(f"input_blocks.{n}.0", down) if flags.resblock_updown
                      else _pair(f"input_blocks.{n}.0.op", f"{down}.conv"))
            n += 1
    rules += res("middle_block.0", "mid_block.resnets.0")
    rules += att("middle_block.1", "mid_block.attentions.0", chans[-1])
    rules += res("middle_block.2", "mid_block.resnets.1")
    n = 0
    for i, level in enumerate(reversed(range(levels))):
        for j in range(flags.num_res_blocks + 1):
            rules += res(f"output_blocks.{n}.0", f"up_blocks.{i}.resnets.{j}")
            sub = 1
            if level in attn:
                rules += att(f"output_blocks.{n}.1", f"up_blocks.{i}.attentions.{j}", chans[level])
                sub = 2
            if level and j == flags.num_res_blocks:
                up = f"up_blocks.{i}.upsamplers.0"
                rules += (res(f"output_blocks.{n}.{sub}", up) if flags.resblock_updown
                          else _pair(f"output_blocks.{n}.{sub}.conv", f"{up}.conv"))
            n += 1
    rules += _pair("out.0", "conv_norm_out") + _pair("out.2", "conv_out")
    return rules


def _file_shape(rule: Rule, target: dict[str, torch.Size]) -> tuple[int, ...]:
    """The shape the file's tensor must have, from the diffusers tensor(s) it becomes."""
    shape = tuple(target[rule.new[0]])
    if rule.how == "squeeze":
        return (*shape, 1) if len(shape) == 2 else shape
    if rule.how == "qkv":
        return (3 * shape[0], *shape[1:], 1) if len(shape) == 2 else (3 * shape[0],)
    return shape


def _apply(rule: Rule, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    if rule.how == "copy":
        return {rule.new[0]: tensor}
    if rule.how == "squeeze":
        return {rule.new[0]: tensor.squeeze(-1) if tensor.dim() == 3 else tensor}
    flat = tensor.squeeze(-1) if tensor.dim() == 3 else tensor  # qkv: [3C, C] or [3C]
    width = flat.shape[0] // 3
    rest = flat.shape[1:]
    if rule.order == "legacy":  # [head, q|k|v, channel]: heads first (QKVAttentionLegacy)
        parts = flat.reshape(rule.heads, 3, width // rule.heads, *rest).unbind(1)
    else:  # [q|k|v, head, channel] (QKVAttention)
        parts = flat.reshape(3, width, *rest).unbind(0)
    # own copies: views of one storage would be saved as shared tensors
    return {name: part.reshape(width, *rest).clone(memory_format=torch.contiguous_format)
            for name, part in zip(rule.new, parts, strict=True)}


# ------------------------------------------------------------------ reading and checking a file

def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The file's state dict, read with ``torch.load(weights_only=True)``: nothing in it is run, and anything
    that is not a plain dict of tensors is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file does not exist", "check the path")
    obj = load_torch_weights(path, FIX)
    if not isinstance(obj, dict) or not obj:
        raise InputError(path, f"holds a {type(obj).__name__}, not a state dict (a dict of tensors)", FIX)
    odd = next(((k, v) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        key, value = odd
        raise InputError(path, f"not a state dict: {key!r} holds a {type(value).__name__}, not a tensor (a training "
                               "checkpoint or optimizer state? guided-diffusion writes the weights to model*.pt "
                               "and ema_*.pt)", FIX)
    return dict(obj)


def mismatch(state: dict[str, torch.Tensor], rules: list[Rule], target: dict[str, torch.Size]) -> str | None:
    """The first difference between ``state`` and the architecture (in the file's expected order), or None."""
    for rule in rules:
        want = _file_shape(rule, target)
        if rule.old not in state:
            return f"'{rule.old}' is missing (expected shape {list(want)})"
        tensor = state[rule.old]
        if not tensor.is_floating_point():
            return f"'{rule.old}' holds {tensor.dtype} values, not floats"
        if tuple(tensor.shape) != want:
            return f"'{rule.old}' has shape {list(tensor.shape)}, expected {list(want)}"
    expected = {r.old for r in rules}
    extra = next((k for k in state if k not in expected), None)
    if extra is not None:
        why = " (a class-conditional model: not supported)" if extra.startswith("label_emb") else ""
        return f"'{extra}' is not a tensor of this architecture{why}"
    return None


def matching_configs(state: dict[str, torch.Tensor]) -> list[str]:
    """The named configs whose architecture ``state`` has exactly (to say which one a refused file is)."""
    found = []
    for name, published in CONFIGS.items():
        target = {k: v.shape for k, v in _meta_unet(published.flags).state_dict().items()}
        if mismatch(state, key_rules(published.flags, target), target) is None:
            found.append(name)
    return found


def convert_state_dict(state: dict[str, torch.Tensor], flags: AdmFlags, *, path: str | Path = "checkpoint",
                       config: str = "custom") -> dict[str, torch.Tensor]:
    """The diffusers ``UNet2DModel`` state dict (float32) of a guided-diffusion state dict of ``flags``; refuses
    a state dict of another architecture, naming the first mismatching key and the config it expected."""
    target = {k: v.shape for k, v in _meta_unet(flags).state_dict().items()}
    rules = key_rules(flags, target)
    problem = mismatch(state, rules, target)
    if problem:
        others = [c for c in matching_configs(state) if c != config]
        hint = f"it matches --config {' / '.join(others)}" if others else (
            "pass the --config it was made with, or --config custom with its guided-diffusion flags")
        raise InputError(path, f"not a guided-diffusion UNet of --config {config} ({flags.line()}): {problem}",
                         hint)
    out: dict[str, torch.Tensor] = {}
    for rule in rules:
        out.update(_apply(rule, state[rule.old].to(torch.float32)))
    assert set(out) == set(target), "key rules and UNet2DModel disagree"  # a bug here, not in the file
    return out


# ------------------------------------------------------------------ the command

@dataclass
class ImportedModel:
    folder: Path
    card: dict = field(default_factory=dict)
    seconds: float = 0.0


def _claim(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another --out, or pass --overwrite to replace "
                          "it (nothing there is overwritten otherwise)")


def import_adm(checkpoint: str | Path, out: str | Path, config: str, overrides: dict | None = None, *,
               overwrite: bool = False) -> ImportedModel:
    """Convert a guided-diffusion checkpoint into a diffusers model folder (``UNet2DModel.save_pretrained``
    layout: config.json + diffusion_pytorch_model.safetensors, plus scheduler_config.json and card.json) that
    ``weakloc generate inpaint --generator repaint`` and ``weakloc generate sample`` load as they are."""
    from diffusers import DDPMScheduler, UNet2DModel

    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    flags = flags_for(config, overrides)
    _claim(out, overwrite)
    state = read_checkpoint(checkpoint)
    converted = convert_state_dict(state, flags, path=checkpoint, config=config)
    kwargs = unet_kwargs(flags)
    with torch.device("meta"):
        unet = UNet2DModel(**kwargs)
    unet.load_state_dict(converted, strict=True, assign=True)  # the file's tensors, no random init first
    scheduler = DDPMScheduler(**scheduler_config(flags))
    params = sum(p.numel() for p in unet.parameters())
    card = {
        "kind": "adm-import", "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "source": {"file": checkpoint.name, "path": str(checkpoint.resolve()), "bytes": checkpoint.stat().st_size,
                   "sha256": file_sha256(checkpoint), "tensors": len(state),
                   "dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in state.values()})},
        "config": config, "published": CONFIGS[config].source if config in CONFIGS else None,
        "flags": asdict(flags), "guided_diffusion_flags": flags.line(), "parameters": params,
        "parameters_millions": round(params / 1e6, 2),
        "variance": ("learned_range: the UNet's channels 3-5 interpolate the log variance between beta~_t and "
                     "beta_t, as P2 and RePaint sample" if flags.learn_sigma else "fixed_large (beta_t)"),
        "unet": kwargs, "scheduler": scheduler_config(flags),
    }
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    unet.save_pretrained(tmp, safe_serialization=True)
    scheduler.save_pretrained(tmp)
    write_json(tmp / "card.json", card)
    if out.is_dir():  # only reached with overwrite (_claim)
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    tmp.rename(out)
    return ImportedModel(out, card, time.perf_counter() - started)

