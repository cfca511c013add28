"""Render a synthetic NTU RGB+D dataset: same folders, names and file formats as the real download.

A *take* is one performance (setup, performer, replication, action) seen by all three sensors at once,
as in NTU; it is the unit of parallel work. Every random choice comes from a generator seeded by the
global seed and the identifiers it depends on (performer, setup, take, camera), so a sample renders the
same whatever the worker count, order or subset. Writing the renders into a dataset folder is
`synth.folder`'s part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import numpy as np

from arctic_kd.data.ntu import SampleName
from arctic_kd.data.skeleton import Body, Skeleton
from arctic_kd.data.synth import figure as fig
from arctic_kd.data.synth import render
from arctic_kd.data.synth.actions import ACTIONS, DEFAULT_NUM_CLASSES, action_pose
from arctic_kd.data.synth.camera import Camera, kinect_pair

CLOTHES_GREYS = ((70, 200), (60, 190), (40, 140))  # shirt, pants, shoes: grey levels, above the dim room
CAMERA_AZIMUTHS = {1: 0.0, 2: 45.0, 3: -45.0}  # like NTU's three sensors at 0° and ±45°
_PERFORMER, _SETUP, _BACKGROUND, _TAKE, _SENSOR = range(1, 6)  # seed namespaces


def _knob(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class SynthConfig:
    """Every size and difficulty knob of the generator (the CLI exposes each one)."""

    num_classes: int = _knob(DEFAULT_NUM_CLASSES, f"action classes A001…, up to {len(ACTIONS)}")
    performers: int = _knob(
        10, "performers P001…; NTU60 cross-subject trains on 1, 2, 4, 5, 8, 9 of the first 10"
    )
    setups: int = _knob(
        2, "setups (rooms: background, light, sensor placement); performers are spread over them"
    )
    cameras: int = _knob(3, "sensors at 0°, +45° and −45° (C001–C003), recording every take together")
    replications: int = _knob(2, "repetitions per performer and action; R001 faces camera 2, R002 camera 3")
    min_frames: int = _knob(32, "shortest video, frames")
    max_frames: int = _knob(48, "longest video, frames")
    fps: float = _knob(30.0, "frame rate of both streams")
    rgb_size: tuple[int, int] = _knob((256, 144), "RGB width×height (Kinect colour is 16:9, 1920×1080)")
    ir_size: tuple[int, int] = _knob((128, 106), "IR width×height (Kinect IR is 512×424)")
    rgb_noise: float = _knob(3.0, "RGB sensor noise σ, grey levels")
    rgb_clutter: float = _knob(0.3, "contrast of furniture and texture in the RGB room, 0 (bare) … 1")
    ir_noise: float = _knob(6.0, "IR sensor noise σ, grey levels")
    ir_blur: float = _knob(0.7, "IR optics blur σ, in pixels of a 128-pixel-wide frame")
    ir_object_contrast: float = _knob(
        0.2, "held object's IR heat, fraction of skin-over-background (0 = invisible)"
    )
    object_scale: float = _knob(2.0, "size factor of held objects")
    motion_noise: float = _knob(0.04, "smooth random wobble added to every pose parameter")
    facing_deg: float = _knob(30.0, "how far replications turn towards the side cameras, degrees")
    quality: int = _knob(4, "MPEG-4 quantiser of both videos, 2 (best) … 31")
    seed: int = _knob(0, "random seed: the same seed gives the same decoded frames")

    def __post_init__(self) -> None:
        checks = {
            "num_classes": 1 <= self.num_classes <= len(ACTIONS),
            "performers": 1 <= self.performers <= 999,
            "setups": 1 <= self.setups <= 999,
            "cameras": 1 <= self.cameras <= 3,
            "replications": 1 <= self.replications <= 999,
            "min_frames": 8 <= self.min_frames <= self.max_frames,
            "ir_object_contrast": 0.0 <= self.ir_object_contrast <= 1.0,
            "quality": 2 <= self.quality <= 31,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"synthetic dataset option out of range: {', '.join(f'{n}={getattr(self, n)}' for n in bad)} "
                f"(classes 1–{len(ACTIONS)}, cameras 1–3, 8 ≤ min_frames ≤ max_frames, quality 2–31)"
            )

    @property
    def class_names(self) -> list[str]:
        return [a.name for a in ACTIONS[: self.num_classes]]

    def setup_of(self, performer: int) -> int:
        return 1 + (performer - 1) % self.setups

    def takes(self) -> list[SampleName]:
        """One name per take, with camera 0 standing for 'all cameras'."""
        return [
            SampleName(self.setup_of(p), 0, p, r, a)
            for p in range(1, self.performers + 1)
            for r in range(1, self.replications + 1)
            for a in range(1, self.num_classes + 1)
        ]

    def sample_names(self) -> list[SampleName]:
        return [
            SampleName(t.setup, c, t.performer, t.replication, t.action)
            for t in self.takes()
            for c in range(1, self.cameras + 1)
        ]


@dataclass(frozen=True)
class Performer:
    shape: fig.BodyShape
    palette: dict[str, tuple[float, float, float]]
    skin_heat: float  # IR grey level of skin: body temperature
    clothing_insulation: float  # fraction of the skin's warmth that shows through clothes


@dataclass(frozen=True)
class Setup:
    distance: float
    height: float
    light: np.ndarray  # per-channel gain
    ir_level: float  # background IR grey level


@dataclass
class TakeRender:
    """Frames, skeleton and figure masks of one camera of one take (masks only when asked, for checks)."""

    name: SampleName
    rgb: list[np.ndarray]
    ir: list[np.ndarray]
    skeleton: Skeleton
    rgb_masks: list[np.ndarray] = field(default_factory=list)
    ir_masks: list[np.ndarray] = field(default_factory=list)


def _rng(config: SynthConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *keys])


def make_performer(config: SynthConfig, performer: int) -> Performer:
    rng = _rng(config, _PERFORMER, performer)
    shape = fig.BodyShape(
        height=rng.uniform(1.5, 1.9),
        arm=rng.uniform(0.93, 1.07),
        leg=rng.uniform(0.93, 1.07),
        shoulders=rng.uniform(0.88, 1.12),
        girth=rng.uniform(0.85, 1.25),
    )
    # skin is the brightest part of most performers, as in a lit room; clothes vary widely in brightness
    # but stay muted (a grey with a slight tint), so that a held object's vivid colour is never on a shirt
    skin = np.array([225, 185, 150]) * rng.uniform(0.75, 1.05)
    shirt, pants, shoes = (rng.uniform(low, high) + rng.uniform(-20, 20, 3) for low, high in CLOTHES_GREYS)
    sleeve = shirt if rng.random() < 0.5 else skin
    palette = {"skin": skin, "shirt": shirt, "sleeve": sleeve, "pants": pants, "shoes": shoes}
    palette = {k: tuple(float(c) for c in v) for k, v in palette.items()}
    return Performer(shape, palette, rng.uniform(185, 235), rng.uniform(0.6, 0.85))


def make_setup(config: SynthConfig, setup: int) -> Setup:
    rng = _rng(config, _SETUP, setup)
    return Setup(
        rng.uniform(2.7, 3.3),
        rng.uniform(0.8, 1.3),
        rng.uniform(0.75, 1.15) * rng.uniform(0.9, 1.1, 3),
        rng.uniform(35, 75),
    )


def _heat(config: SynthConfig, performer: Performer, setup: Setup, sleeve_is_skin: bool) -> dict[str, float]:
    cloth = setup.ir_level + performer.clothing_insulation * (performer.skin_heat - setup.ir_level)
    shoes = setup.ir_level + 0.4 * (performer.skin_heat - setup.ir_level)
    held = setup.ir_level + config.ir_object_contrast * (performer.skin_heat - setup.ir_level)
    sleeve = performer.skin_heat if sleeve_is_skin else cloth
    return {
        "skin": performer.skin_heat,
        "shirt": cloth,
        "sleeve": sleeve,
        "pants": cloth,
        "shoes": shoes,
        "object": held,
    }


def _timeline(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Action phase per frame: random length, start offset, speed and a smooth monotone time warp."""
    frames = int(rng.integers(config.min_frames, config.max_frames + 1))
    t = np.linspace(0.0, 1.0, frames)
    start, end = rng.uniform(0.0, 0.18), rng.uniform(0.82, 1.0)
    phase = np.clip((t - start) / (end - start), 0.0, 1.0)
    warp = rng.uniform(-0.5, 0.5)
    return phase + warp * np.sin(2 * np.pi * phase) / (2 * np.pi)


def _wobble(frames: int, size: int, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise (frames, size): a few random knots, linearly interpolated."""
    knots = rng.normal(0.0, amount, (6, size))
    return np.stack(
        [np.interp(np.linspace(0, 5, frames), np.arange(6), knots[:, k]) for k in range(size)], -1
    )


def take_world_joints(config: SynthConfig, take: SampleName, performer: Performer) -> np.ndarray:
    """The performance in world coordinates (T, 25, 3): the same for every camera of the take."""
    rng = _rng(config, _TAKE, take.setup, take.performer, take.replication, take.action)
    phase = _timeline(config, rng)
    pose = action_pose(ACTIONS[take.action - 1], phase, amplitude=rng.uniform(0.85, 1.15))
    pose = {k: v + _wobble(len(phase), v.shape[1], config.motion_noise, rng) for k, v in pose.items()}
    joints = fig.pose_joints(pose, performer.shape)
    side = 1.0 if take.replication % 2 else -1.0
    yaw = np.radians(side * config.facing_deg + rng.uniform(-10, 10))
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    offset = np.array([rng.uniform(-0.25, 0.25), 0.0, rng.uniform(-0.3, 0.3)])
    return joints @ rotation.T + offset


# Kinect joint hierarchy (0-based parent of each joint); leaves carry a zero orientation in NTU files.
_PARENT = (1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 6, 11, 10)
_LEAVES = frozenset(
    {fig.HEAD, fig.L_FOOT, fig.R_FOOT, fig.L_HAND_TIP, fig.L_THUMB, fig.R_HAND_TIP, fig.R_THUMB}
)


def _bone_quaternions(joints_cam: np.ndarray) -> np.ndarray:
    """(T, 25, 4) w x y z: the shortest rotation taking +y to each bone's direction (parent → joint)."""
    parent = np.array(_PARENT)
    bones = joints_cam - joints_cam[:, parent]
    bones[:, fig.SPINE_BASE] = joints_cam[:, fig.SPINE_MID] - joints_cam[:, fig.SPINE_BASE]
    bones /= np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-9)
    axis = np.stack([bones[..., 2], np.zeros_like(bones[..., 0]), -bones[..., 0]], -1)  # y × bone
    quat = np.concatenate([1.0 + bones[..., 1:2], axis], -1)
    quat /= np.maximum(np.linalg.norm(quat, axis=-1, keepdims=True), 1e-9)
    quat[:, sorted(_LEAVES)] = 0.0
    return quat


def make_skeleton(world: np.ndarray, rgb_cam: Camera, ir_cam: Camera, body_id: int) -> Skeleton:
    """NTU skeleton frames: xyz in the IR camera's space, depthX/Y in IR pixels, colorX/Y in RGB pixels."""
    cam = ir_cam.to_camera(world)
    depth_px, color_px = ir_cam.project(world), rgb_cam.project(world)
    quats = _bone_quaternions(cam)
    inside = (depth_px >= 0).all(-1) & (depth_px[..., 0] < ir_cam.width) & (depth_px[..., 1] < ir_cam.height)
    frames = []
    for t in range(len(world)):
        joints = np.concatenate([cam[t], depth_px[t], color_px[t], quats[t]], axis=1)
        spine = cam[t, fig.SPINE_SHOULDER] - cam[t, fig.SPINE_BASE]
        lean_x, _, lean_z = spine / np.linalg.norm(spine)
        body = Body(
            joints=joints,
            tracking=np.where(inside[t], 2, 1),
            body_id=body_id,
            hand_left_confidence=1,
            hand_left_state=1,
            hand_right_confidence=1,
            hand_right_state=1,
            lean=(float(lean_x), float(-lean_z)),
        )
        frames.append([body])
    return Skeleton(frames)


@functools.lru_cache(maxsize=16)
def _backgrounds(config: SynthConfig, setup: int, camera: int) -> tuple[np.ndarray, np.ndarray]:
    """The room behind the figure, as each sensor of a setup sees it (cached: shared by many takes)."""
    rng = _rng(config, _BACKGROUND, setup, camera)
    rgb = render.rgb_background(*config.rgb_size, config.rgb_clutter, rng)
    return rgb, render.ir_background(*config.ir_size, make_setup(config, setup).ir_level, rng)


def render_take(config: SynthConfig, take: SampleName, with_masks: bool = False) -> list[TakeRender]:
    """All cameras of one take: frames of both modalities and the matching skeletons."""
    performer, setup = make_performer(config, take.performer), make_setup(config, take.setup)
    world = take_world_joints(config, take, performer)
    capsules = render.body_capsules(world, performer.shape.height, performer.shape.girth)
    palette = dict(performer.palette)
    held = ACTIONS[take.action - 1].held_object
    if held:
        capsules.append(render.object_capsule(held, world, config.object_scale))
        palette["object"] = render.OBJECT_COLOURS[held]
    lit = {
        part: tuple(float(v) for v in np.clip(np.array(c) * setup.light, 0, 255))
        for part, c in palette.items()
    }
    heat = _heat(config, performer, setup, performer.palette["sleeve"] == performer.palette["skin"])
    ir_blur = config.ir_blur * config.ir_size[0] / 128
    outputs = []
    for camera in range(1, config.cameras + 1):
        name = SampleName(take.setup, camera, take.performer, take.replication, take.action)
        rgb_cam, ir_cam = kinect_pair(
            CAMERA_AZIMUTHS[camera], setup.distance, setup.height, config.rgb_size, config.ir_size
        )
        rgb_bg, ir_bg = _backgrounds(config, take.setup, camera)
        sensor = _rng(config, _SENSOR, take.setup, camera, take.performer, take.replication, take.action)
        body_id = 72057594037927936 + int(sensor.integers(0, 10**5))
        rgb_noise = render.SensorNoise(rgb_bg.shape, config.rgb_noise, sensor)
        ir_noise = render.SensorNoise(ir_bg.shape, config.ir_noise, sensor)
        out = TakeRender(name, [], [], make_skeleton(world, rgb_cam, ir_cam, body_id))
        for t in range(len(world)):
            out.rgb.append(render.rgb_frame(rgb_bg, rgb_cam, capsules, t, lit, rgb_noise))
            out.ir.append(render.ir_frame(ir_bg, ir_cam, capsules, t, heat, ir_blur, ir_noise))
            if with_masks:
                out.rgb_masks.append(render.figure_mask(rgb_cam, capsules, t))
                out.ir_masks.append(render.figure_mask(ir_cam, capsules, t))
        outputs.append(out)
    return outputs


def describe_settings(config: SynthConfig) -> str:
    """How a render differs from the default dataset, for logs and bench tables."""
    return ", ".join(differences(config, SynthConfig())) or "the default settings"


def differences(config: SynthConfig, other: SynthConfig) -> list[str]:
    """`knob=value` for each knob of `config` that differs from `other`."""
    return [
        f"{f.name}={getattr(config, f.name)}"
        for f in fields(config)
        if getattr(config, f.name) != getattr(other, f.name)
    ]
