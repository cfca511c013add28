"""Typed experiment configuration: YAML files (presets: `arctic_kd/configs/`), overridden by `--set k=v`.

Configs are plain data; this module turns them into dataclasses and rejects anything unknown or of the
wrong type with a message naming the file and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from arctic_kd.errors import ArcticError


class ConfigError(ArcticError):
    """A config file or override is malformed."""


class ConfigValueError(ConfigError):
    """A value of the right type that breaks a rule (a range, a choice, a rule between keys); `load_config`
    names where it came from (the YAML file or --set)."""


# kept here, below the packages that define them, so a config is checked before anything is built
# (tests check they match `models.resnet3d.BLOCKS_PER_STAGE` and `distill.METHODS`)
MODEL_DEPTHS = (10, 18, 34)
DISTILL_METHODS = ("arctic", "kd", "fitnets", "at", "sp", "rkd", "afd", "dkd")


def _rule(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigValueError(f"{key} must be {rule}, got {value!r}")


def _at_least(section: str, instance: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(instance, name)
        _rule(value >= minimum, f"{section}.{name}", f"at least {minimum}", value)


def _positive(section: str, instance: Any, *names: str) -> None:
    for name in names:
        value = getattr(instance, name)
        _rule(value > 0, f"{section}.{name}", "positive", value)


def _fraction(
    section: str, instance: Any, name: str, low_open: bool = False, high_open: bool = False
) -> None:
    """`section.name` within [0, 1], its ends excluded where asked."""
    value = getattr(instance, name)
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    _rule(ok, f"{section}.{name}", f"in {interval}", value)


Stage = Literal["stem", "layer1", "layer2", "layer3", "layer4"]
ALL_STAGES: tuple[Stage, ...] = ("layer1", "layer2", "layer3", "layer4")


def _stages(key: str, stages: tuple[str, ...]) -> None:
    """At least one stage, none twice. Which names exist is the `Stage` type's rule, checked for every
    file and --set value; code may pass its own backbone's stage names."""
    ok = bool(stages) and len(set(stages)) == len(stages)
    _rule(ok, key, "distinct stage names (at least one)", list(stages))


@dataclass
class PkuMmdConfig:
    """Where a PKU-MMD download keeps each file, as patterns under `data.root` ({video} is e.g. 0002-L)."""

    rgb: str = "Data/RGB_VIDEO/{video}.avi"
    ir: str = "Data/IR_VIDEO/{video}-infrared.avi"  # a folder (e.g. Data/IR_VIDEO/{video}) = per-frame PNGs
    labels: str = "Train_Label_PKU_final/{video}.txt"
    splits: str = "Split/{split}.txt"  # {split}: split_names[0] (pkummd-xsub) or split_names[1] (xview)
    split_names: tuple[str, str] = ("cross-subject", "cross-view")  # some copies: cross_subject, cross_view
    first_frame: Literal[0, 1] = 1  # how label rows number frames (end inclusive): 1 is the common reading
    min_confidence: int = 0  # leave out label rows of lower confidence (2 strong, 1 slight; 0 also occurs)
    suspicious_rows: Literal["drop", "keep"] = "drop"  # keep: train on them too (reversed rows swapped)
    max_overlap: float = 0.5  # rows sharing more than this fraction of the shorter one are suspicious

    def __post_init__(self) -> None:
        _fraction("data.pkummd", self, "max_overlap", low_open=True)


@dataclass
class DataConfig:
    dataset: Literal["ntu", "pkummd", "manifest"] = "ntu"
    root: str = "data/synth"  # ntu and pkummd: the dataset folder
    manifest: str = ""  # dataset manifest: the CSV file (its paths are relative to its folder)
    class_names: str = ""  # pkummd and manifest: a class-names file (one per line, in label order)
    train_subjects: tuple[str, ...] = ()  # manifest-xsub: the subjects whose samples train
    pkummd: PkuMmdConfig = field(default_factory=PkuMmdConfig)
    protocol: str = "ntu60-xsub"  # ntu60-/ntu120-..., pkummd-xsub|xview, manifest-split|manifest-xsub
    drop_missing_skeletons: bool = False
    num_frames: int = 8
    rgb_size: int = 112  # square clip side, pixels
    ir_size: int = 112
    crop_scale: tuple[float, float] = (0.6, 1.0)
    colour_jitter: float = 0.4  # RGB training clips: channel shuffle + brightness/contrast/saturation ± this
    standardise: tuple[Literal["rgb", "ir"], ...] = ()  # modalities normalised per clip (mean 0, std 1)
    person_crop: bool = True  # crop each stream to the performer's square, from the skeleton files
    person_margin: float = 0.15  # extra room around the joints, as a fraction of the box side
    test_crop: float = 1.0  # side of the test crops, as a fraction of the region (frame or person square)
    test_clips: int = 1  # multi-view testing: clips per video at evenly spaced offsets in each segment
    test_crops: int = 1  # ... times this many crops along the long side (odd; > 1 needs test_crop < 1)
    batch_size: int = 16  # global: split evenly between the processes of a torchrun launch
    workers: int = 2
    skip_bad: bool = False
    cache: bool = (
        False  # keep decoded videos in memory (small datasets: every epoch after the first is cheap)
    )
    cache_side: int = 128  # short side of the cached frames (whole frames: person crops are cut later)
    store: str = ""  # clip store made by `arctic prepare`: clips are read from it instead of the videos
    decode_threads: int = 1  # PyAV decoder threads per video (raw videos and `arctic prepare`)
    # seconds a loader worker may take for one batch (or one video of data.cache) before the run stops with
    # an error naming what it was reading; 0 waits forever
    worker_timeout: float = 300.0

    def __post_init__(self) -> None:
        _at_least("data", self, 1, "num_frames", "rgb_size", "ir_size", "batch_size", "test_clips")
        _at_least("data", self, 1, "test_crops", "cache_side", "decode_threads")
        _at_least("data", self, 0, "workers", "colour_jitter", "person_margin", "worker_timeout")
        _fraction("data", self, "test_crop", low_open=True)
        low, high = self.crop_scale
        _rule(
            0 < low <= high <= 1,
            "data.crop_scale",
            "[low, high] with 0 < low <= high <= 1",
            list(self.crop_scale),
        )
        # multi-view testing: the centre crop is one of an odd number, and crops of the whole region coincide
        _rule(
            self.test_crops % 2 == 1,
            "data.test_crops",
            "odd (the centre crop is one of them)",
            self.test_crops,
        )
        if self.test_crops > 1 and self.test_crop >= 1:
            raise ConfigValueError(  # the words `transforms.view_crops` uses, with the keys to change
                f"data: {self.test_crops} test crops of the whole region would coincide: set data.test_crop "
                f"below 1 (or data.test_crops=1), got data.test_crops={self.test_crops}, data.test_crop=1"
            )


@dataclass
class ModelConfig:
    arch: Literal["r3d", "mc3", "r2plus1d"] = "r3d"
    depth: int = 18
    width: float = 1.0
    dropout: float = 0.0
    pretrained: str = ""  # torchvision-format (Kinetics-400) state dict to start from; "" = from scratch

    def check(self, section: str) -> None:
        """The values' rules, named by the section the model sits in (teacher or student)."""
        depths = ", ".join(map(str, MODEL_DEPTHS))
        _rule(self.depth in MODEL_DEPTHS, f"{section}.depth", f"one of {depths}", self.depth)
        _positive(section, self, "width")
        _fraction(section, self, "dropout", high_open=True)


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 30
    # the RGB teacher's cross-entropy schedule, when it should differ from `epochs` (0: the same): it is
    # trained once and then reused by every student, so a longer teacher schedule costs little overall
    teacher_epochs: int = 0
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    # the RGB teacher's label smoothing, when it should differ from `label_smoothing` (None: the same);
    # smoothing a teacher's targets can erase the class similarities in its logits that KD passes on
    # (Müller et al., NeurIPS 2019) — measured here in BENCHMARKS.md, "Why KD does not pay"
    teacher_label_smoothing: float | None = None
    clip_grad: float = 0.0  # max gradient norm; 0 = off

    def __post_init__(self) -> None:
        _positive("optim", self, "lr")
        _at_least("optim", self, 0, "weight_decay", "warmup_epochs", "clip_grad")
        _fraction("optim", self, "momentum", high_open=True)
        if self.epochs < 1 or self.teacher_epochs < 0:
            raise ConfigValueError(
                "optim.epochs must be at least 1 and optim.teacher_epochs at least 0 (0: as epochs), "
                f"got {self.epochs} and {self.teacher_epochs}"
            )
        for name in ("label_smoothing", "teacher_label_smoothing"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigValueError(f"optim.{name} must be in [0, 1), got {value}")


@dataclass
class TrainConfig:
    """How the training loop runs (not what it learns): precision, distributed options, logs, checkpoints."""

    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 (or fp16) on GPU, fp32 on CPU
    channels_last: bool = True  # channels-last-3d memory layout on GPU (faster convolutions with AMP)
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over the global batch
    tensorboard: bool = True  # TensorBoard event files in OUT/tensorboard, beside metrics.jsonl
    eval_every: int = 1  # test every N epochs (and always after the last): evaluation is not free
    checkpoint_every: int = 0  # also write last.pt every N training steps (0: at the end of each epoch only)

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ConfigValueError(f"train.eval_every must be at least 1 (epochs), got {self.eval_every}")
        _at_least("train", self, 0, "checkpoint_every")


@dataclass
class ArmConfig:
    """Attention-based relation matching between every teacher and every student stage."""

    weight: float = 2.0  # chosen on a second render (BENCHMARKS.md, ARCTIC's weights)
    value: Literal["relation", "attention"] = "attention"  # measured best, BENCHMARKS.md
    dim: int = 64
    stages: tuple[Stage, ...] = ("layer1", "layer2", "layer3", "layer4")

    def __post_init__(self) -> None:
        _at_least("distill.arm", self, 0, "weight")
        _at_least("distill.arm", self, 1, "dim")
        _stages("distill.arm.stages", self.stages)


@dataclass
class ArcConfig:
    """Activation region constraint on class activation maps."""

    weight: float = 1.0
    rho: float = 0.3
    maps: Literal["cam", "gradcam"] = "cam"
    gradcam_stages: tuple[Stage, ...] = ("layer3", "layer4")
    # CAM only: L_ARC moves the student's features, not its classifier (Grad-CAM detaches its weights)
    fixed_classifier: bool = False

    def __post_init__(self) -> None:
        _at_least("distill.arc", self, 0, "weight")
        _fraction("distill.arc", self, "rho", low_open=True)
        _stages("distill.arc.gradcam_stages", self.gradcam_stages)


@dataclass
class KdConfig:
    """Correctness-aware knowledge distillation."""

    weight: float = 0.25  # at 1 it works against ARM (BENCHMARKS.md, ARCTIC's weights)
    tau: float = 4.0
    mode: Literal["mask", "ahead", "shift", "none"] = "mask"

    def __post_init__(self) -> None:
        _at_least("distill.kd", self, 0, "weight")
        _positive("distill.kd", self, "tau")


@dataclass
class HintonConfig:
    """Baseline `kd`: Hinton KD, soft targets at temperature τ (mdistiller's CIFAR recipe)."""

    weight: float = 0.9
    ce_weight: float = 0.1
    tau: float = 4.0

    def __post_init__(self) -> None:
        _at_least("distill.hinton", self, 0, "weight", "ce_weight")
        _positive("distill.hinton", self, "tau")


@dataclass
class FitNetsConfig:
    """Baseline `fitnets`: one hint stage, regressed from the student's same stage."""

    weight: float = 100.0
    stage: Stage = "layer2"

    def __post_init__(self) -> None:
        _at_least("distill.fitnets", self, 0, "weight")


@dataclass
class AtConfig:
    """Baseline `at`: attention transfer (p = 2 maps)."""

    weight: float = 1000.0
    stages: tuple[Stage, ...] = ALL_STAGES

    def __post_init__(self) -> None:
        _at_least("distill.at", self, 0, "weight")
        _stages("distill.at.stages", self.stages)


@dataclass
class SpConfig:
    """Baseline `sp`: similarity-preserving KD."""

    weight: float = 3000.0
    stages: tuple[Stage, ...] = ("layer4",)

    def __post_init__(self) -> None:
        _at_least("distill.sp", self, 0, "weight")
        _stages("distill.sp.stages", self.stages)


@dataclass
class RkdConfig:
    """Baseline `rkd`: relational KD on the pooled embedding of one stage."""

    distance_weight: float = 25.0
    angle_weight: float = 50.0
    stage: Stage = "layer4"

    def __post_init__(self) -> None:
        _at_least("distill.rkd", self, 0, "distance_weight", "angle_weight")


@dataclass
class AfdConfig:
    """Baseline `afd`: attention-based feature distillation over teacher × student stages."""

    weight: float = 200.0
    dim: int = 128
    stages: tuple[Stage, ...] = ALL_STAGES

    def __post_init__(self) -> None:
        _at_least("distill.afd", self, 0, "weight")
        _at_least("distill.afd", self, 1, "dim")
        _stages("distill.afd.stages", self.stages)


@dataclass
class DkdConfig:
    """Baseline `dkd`: decoupled KD, its weight ramped up linearly over the first `warmup_epochs`."""

    alpha: float = 1.0
    beta: float = 8.0
    tau: float = 4.0
    warmup_epochs: float = 20.0

    def __post_init__(self) -> None:
        _at_least("distill.dkd", self, 0, "alpha", "beta", "warmup_epochs")
        _positive("distill.dkd", self, "tau")


@dataclass
class DistillConfig:
    """`method` picks the distiller; each has its own section (ARCTIC: arm, arc, kd)."""

    method: str = "arctic"
    teacher: str = ""  # checkpoint of the RGB teacher
    arm: ArmConfig = field(default_factory=ArmConfig)
    arc: ArcConfig = field(default_factory=ArcConfig)
    kd: KdConfig = field(default_factory=KdConfig)  # ARCTIC's correctness-aware KD, not the `kd` baseline
    hinton: HintonConfig = field(default_factory=HintonConfig)  # the `kd` baseline
    fitnets: FitNetsConfig = field(default_factory=FitNetsConfig)
    at: AtConfig = field(default_factory=AtConfig)
    sp: SpConfig = field(default_factory=SpConfig)
    rkd: RkdConfig = field(default_factory=RkdConfig)
    afd: AfdConfig = field(default_factory=AfdConfig)
    dkd: DkdConfig = field(default_factory=DkdConfig)

    def __post_init__(self) -> None:  # the message `distill.build_distiller` gives too
        if self.method not in DISTILL_METHODS:
            known = ", ".join(sorted(DISTILL_METHODS))
            raise ConfigValueError(f"distill.method: unknown method {self.method!r}; known: {known}")


def method_sections(method: str) -> tuple[str, ...]:
    """The `distill` sections that `method` reads; the others cannot change its training."""
    return {"arctic": ("arm", "arc", "kd"), "kd": ("hinton",)}.get(method, (method,))


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    seed: int = 0
    device: str = "auto"  # auto = cuda when available
    deterministic: bool = False  # deterministic kernels: reruns and resumed runs give bit-identical weights

    def __post_init__(self) -> None:
        self.teacher.check("teacher")
        self.student.check("student")

    def to_dict(self) -> dict[str, Any]:
        return plain_dict(self)

    def network(self, modality: str) -> ModelConfig:
        """The network section that trains on `modality` alone: the RGB teacher, or the IR student (whose
        network the IR-only baseline shares)."""
        return self.teacher if modality == "rgb" else self.student


def plain_dict(instance: Any) -> dict[str, Any]:
    """A dataclass instance as nested dicts and lists (tuples become lists): the one form in which configs
    and bench plans are written to YAML, JSON and checkpoints."""
    return _plain(dataclasses.asdict(instance))


def _plain(value: Any) -> Any:
    """Tuples become lists so the dict is YAML- and `torch.load(weights_only=True)`-friendly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file (if any), then `key.sub=value` overrides (values parsed as YAML)."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise ConfigError(f"{path}: cannot read config: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config is a mapping of sections, found {type(data).__name__}")
    if not overrides:
        return _build(data, source)
    merged = apply_overrides(copy.deepcopy(data), overrides)
    try:
        return _build(merged, source)
    except ConfigError:
        _build(data, source)  # the file alone is wrong: say so, naming it
        return _build(merged, "--set")  # else the overrides broke it: raises, naming --set


def _build(data: dict[str, Any], source: str) -> Config:
    """The config of `data`; a value that breaks a rule is reported as coming from `source`."""
    try:
        return from_dict(Config, data, source)
    except ConfigValueError as error:
        raise ConfigValueError(f"{source}: {error}") from None


def config_from_dict(data: dict[str, Any], source: str = "checkpoint") -> Config:
    return from_dict(Config, data, source)


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`key.sub=value` items applied to nested config dicts (in place; returned for chaining)."""
    for item in overrides:
        _apply_override(data, item)
    return data


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, e.g. optim.lr=0.01, got {item!r}")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    try:
        node[leaf] = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: cannot parse value {text!r}") from None


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from nested dicts, checking names and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, found {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    values = {name: _coerce(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(hint)))}"
            )
        return value
    if origin is tuple:
        return _coerce_tuple(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        return _coerce(next(o for o in options if o is not type(None)), value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, found {value!r}")
    return value


def _coerce_tuple(hint: Any, value: Any, where: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, found {value!r}")
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, where) for v in value)
    if len(args) != len(value):
        raise ConfigError(f"{where}: expected {len(args)} values, found {len(value)}")
    return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
