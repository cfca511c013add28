"""Typed experiment configuration: YAML files (presets: `arctic_kd/configs/`), overridden by `--set k=v`.

Configs are plain data; this module turns them into dataclasses and rejects anything unknown or of the
wrong type with a message naming the file and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from arctic_kd.config.distill import DistillConfig
from arctic_kd.config.typed import at_least, fraction, from_dict, plain_dict, positive, rule
from arctic_kd.errors import ConfigError, ConfigValueError

# kept here, below the package that defines them, so a config is checked before anything is built
# (tests check they match `models.resnet3d.BLOCKS_PER_STAGE`)
MODEL_DEPTHS = (10, 18, 34)


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
        fraction("data.pkummd", self, "max_overlap", low_open=True)


@dataclass
class ValConfig:
    """The validation split, carved out of the training split (never the test split), on which `best.pt` is
    chosen and `arctic tune` scores: whole subjects on cross-subject protocols, else a class-stratified share
    of the training samples (see `data.validation`)."""

    enabled: bool = True  # false: no validation split, every training sample trains and no best.pt is kept
    fraction: float = 0.1  # share of the training subjects (cross-subject) or of each class's samples
    subjects: tuple[str, ...] = ()  # cross-subject: validate on these subjects instead (e.g. [P008, P015])

    def __post_init__(self) -> None:
        fraction("data.val", self, "fraction", low_open=True, high_open=True)


@dataclass
class DataConfig:
    dataset: Literal["ntu", "pkummd", "manifest"] = "ntu"
    root: str = "data/synth"  # ntu and pkummd: the dataset folder
    manifest: str = ""  # dataset manifest: the CSV file (its paths are relative to its folder)
    class_names: str = ""  # pkummd and manifest: a class-names file (one per line, in label order)
    train_subjects: tuple[str, ...] = ()  # manifest-xsub: the subjects whose samples train
    pkummd: PkuMmdConfig = field(default_factory=PkuMmdConfig)
    val: ValConfig = field(default_factory=ValConfig)
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
        at_least("data", self, 1, "num_frames", "rgb_size", "ir_size", "batch_size", "test_clips")
        at_least("data", self, 1, "test_crops", "cache_side", "decode_threads")
        at_least("data", self, 0, "workers", "colour_jitter", "person_margin", "worker_timeout")
        fraction("data", self, "test_crop", low_open=True)
        low, high = self.crop_scale
        rule(
            0 < low <= high <= 1,
            "data.crop_scale",
            "[low, high] with 0 < low <= high <= 1",
            list(self.crop_scale),
        )
        # multi-view testing: the centre crop is one of an odd number, and crops of the whole region coincide
        rule(
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
        rule(self.depth in MODEL_DEPTHS, f"{section}.depth", f"one of {depths}", self.depth)
        positive(section, self, "width")
        fraction(section, self, "dropout", high_open=True)


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
        positive("optim", self, "lr")
        at_least("optim", self, 0, "weight_decay", "warmup_epochs", "clip_grad")
        fraction("optim", self, "momentum", high_open=True)
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
    eval_every: int = 1  # evaluate every N epochs (and always after the last): evaluation is not free
    # with a validation split (data.val), also test every eval_every epochs (logged as test_*), not only at
    # the end; the test split then still picks nothing
    test_every_eval: bool = False
    checkpoint_every: int = 0  # also write last.pt every N training steps (0: at the end of each epoch only)
    # train the RGB teacher from this many seeds (seed, seed+1, …) and keep the best on held-out data:
    # k times the teacher's training time, against a seed that happens to train badly
    restarts: int = 1
    compile: bool = False  # torch.compile the networks' forward in training (eager where compiling fails)

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ConfigValueError(f"train.eval_every must be at least 1 (epochs), got {self.eval_every}")
        at_least("train", self, 0, "checkpoint_every")
        at_least("train", self, 1, "restarts")


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
        if self.train.restarts > 1 and not self.data.val.enabled:
            raise ConfigValueError(
                "train.restarts keeps the teacher that scores best on the validation split: it needs "
                "data.val.enabled=true (never chosen on the test split)"
            )

    def to_dict(self) -> dict[str, Any]:
        return plain_dict(self)

    def network(self, modality: str) -> ModelConfig:
        """The network section that trains on `modality` alone: the RGB teacher, or the IR student (whose
        network the IR-only baseline shares)."""
        return self.teacher if modality == "rgb" else self.student


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
