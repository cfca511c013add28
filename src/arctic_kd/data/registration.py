"""RGB→IR registration: a 2-D affine map from colour pixels to IR pixels, fitted per video.

NTU ships no calibration; its authors suggest fitting the map from the skeleton's joint pairs (colorX/Y
and depthX/Y of the same joint). Two pinhole cameras side by side with parallel axes are related by
    x_ir = c_ir + (f_ir / f_rgb)·(x_rgb − c_rgb) + f_ir·b / z
i.e. a scale and a shift, plus a parallax term f_ir·b/z that depends on depth. With b ≈ 5 cm and a
performer 2–4 m away that term varies by under a pixel over one body (±0.3 m of depth), so an affine
map fitted on the performer's own joints is exact to sub-pixel level where it matters: on the performer.
(Measured against the synthetic renderer's true cameras: tests/test_registration.py.)

Robustness: real files carry joints whose colour mapping failed (NaN, ±inf, wild values), noise bodies
and swapped limbs. We use RANSAC (3-point minimal fits, consensus within `threshold` IR pixels) followed
by least squares on the inliers, not iteratively reweighted least squares: IRLS starts from the
least-squares fit, which a few gross outliers hundreds of pixels away already drag far off, and M-estimators
break down at a few tens of percent of such points; RANSAC tolerates about half the pairs being wrong,
and the refit on inliers gives back least-squares efficiency. A fixed seed makes the map reproducible.

Without a usable skeleton, a video borrows a map fitted on others (`fallback_registrations`): the median
of the maps fitted on the other videos of its setup and camera, else of its camera in any setup, else the
Kinect v2 nominal map `fov_affine` (both principal points at the image centres, focal lengths from the
fields of view, no baseline). The nominal map is far off on real sensors: on real NTU joint pairs it misses
by a median of ~14 IR px where per-video fits are exact to 0.1–0.2 px, because each unit's principal
points and mounting differ from nominal, while the map of the same camera in another setup misses by ~2 px
(BENCHMARKS.md, "Fallback registration").
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from arctic_kd.data.skeleton import Skeleton

RGB_FOV_DEG = (84.1, 53.8)  # Kinect v2 colour camera, horizontal × vertical
IR_FOV_DEG = (70.6, 60.0)  # Kinect v2 depth/IR camera
MIN_PAIRS = 6  # fewer tracked joint pairs than this: no fit (3 determine an affine map; more check it)
MIN_SPREAD_PX = 2.0  # RMS extent of the pairs across their narrowest direction, RGB pixels
TRACKED = 2  # joint trackingState: measured, not inferred

Affine = np.ndarray  # (2, 3) float64: [x_ir, y_ir]ᵀ = A · [x_rgb, y_rgb, 1]ᵀ


def joint_pairs(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) colour and (N, 2) IR pixel positions of every tracked joint of every body and frame.

    Inferred joints are left out (the SDK guesses them), as are coordinates that are not finite or all
    zero (lost joints).
    """
    rgb, ir = [], []
    for bodies in skeleton.frames:
        for body in bodies:
            joints = body.joints[body.tracking == TRACKED]
            rgb.append(joints[:, 5:7])
            ir.append(joints[:, 3:5])
    if not rgb:
        return np.zeros((0, 2)), np.zeros((0, 2))
    rgb_xy, ir_xy = np.concatenate(rgb), np.concatenate(ir)
    valid = np.isfinite(rgb_xy).all(1) & np.isfinite(ir_xy).all(1)
    valid &= (np.abs(rgb_xy).sum(1) > 0) & (np.abs(ir_xy).sum(1) > 0)
    return rgb_xy[valid], ir_xy[valid]


def least_squares_affine(rgb: np.ndarray, ir: np.ndarray) -> Affine:
    """The affine map minimising the squared IR-pixel error over all pairs."""
    design = np.column_stack([rgb, np.ones(len(rgb))])
    solution, *_ = np.linalg.lstsq(design, ir, rcond=None)
    return solution.T


def robust_affine(
    rgb: np.ndarray,
    ir: np.ndarray,
    threshold: float = 3.0,
    iterations: int = 128,
    max_scored: int = 500,
    seed: int = 0,
) -> tuple[Affine, np.ndarray] | None:
    """RANSAC over 3-pair fits, then least squares on the inliers (twice, as they settle).

    `threshold` is the inlier radius in IR pixels; consensus is counted on at most `max_scored` pairs so
    that a 300-frame two-body file costs milliseconds. Returns the map and the inlier mask of all pairs, or
    None when fewer than MIN_PAIRS pairs agree or they are (nearly) collinear.
    """
    if len(rgb) < MIN_PAIRS:
        return None
    rng = np.random.default_rng(seed)
    scored = rng.choice(len(rgb), min(len(rgb), max_scored), replace=False)
    candidates = _minimal_fits(rgb, ir, rng.integers(0, len(rgb), (iterations, 3)))
    if not len(candidates):
        return None
    errors = _errors(candidates, rgb[scored], ir[scored])  # (candidates, scored)
    best = candidates[int(np.argmax((errors < threshold).sum(1)))]
    inliers = _errors(best[None], rgb, ir)[0] < threshold
    for _ in range(2):
        if inliers.sum() < MIN_PAIRS or not _spread(rgb[inliers]):
            return None
        best = least_squares_affine(rgb[inliers], ir[inliers])
        inliers = _errors(best[None], rgb, ir)[0] < threshold
    return best, inliers


def _minimal_fits(rgb: np.ndarray, ir: np.ndarray, triples: np.ndarray) -> np.ndarray:
    """The exact affine map through each non-degenerate triple of pairs: (K, 2, 3)."""
    design = np.concatenate([rgb[triples], np.ones((*triples.shape, 1))], axis=-1)  # (K, 3, 3)
    area = np.abs(np.linalg.det(design))
    good = area > 1e-3 * (np.ptp(rgb, axis=0).prod() + 1e-9)
    solutions = np.linalg.solve(design[good], ir[triples[good]])  # (K, 3, 2)
    return solutions.transpose(0, 2, 1)


def _errors(maps: np.ndarray, rgb: np.ndarray, ir: np.ndarray) -> np.ndarray:
    design = np.column_stack([rgb, np.ones(len(rgb))])
    residual = design @ maps.transpose(0, 2, 1) - ir  # (K, N, 2)
    return np.sqrt((residual**2).sum(-1))


def _spread(points: np.ndarray) -> bool:
    """True when points span two dimensions (a map fitted to a line is undetermined across it)."""
    singular = np.linalg.svd(points - points.mean(0), compute_uv=False)
    return bool(singular[-1] / np.sqrt(len(points)) > MIN_SPREAD_PX)


@dataclass(frozen=True)
class Fit:
    """A video's fitted RGB→IR map and how well its own joint pairs agree with it."""

    affine: Affine
    residual: float  # median IR-pixel error over every tracked pair (outliers included)
    pairs: int
    inliers: int


def fit_registration(skeleton: Skeleton) -> Fit | None:
    """The video's RGB→IR map from its joint pairs, or None when the skeleton cannot determine one."""
    rgb, ir = joint_pairs(skeleton)
    fit = robust_affine(rgb, ir)
    if fit is None:
        return None
    affine, inliers = fit
    residual = float(np.median(reprojection_errors(affine, rgb, ir)))
    return Fit(affine, residual, len(rgb), int(inliers.sum()))


def reprojection_errors(affine: Affine, rgb: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """IR-pixel distance between each pair's IR position and its RGB position mapped by `affine`."""
    return _errors(np.asarray(affine)[None], rgb, ir)[0]


def median_affine(maps: Sequence[Affine]) -> Affine:
    """The element-wise median of several maps: robust to a few badly fitted videos."""
    return np.median(np.stack([np.reshape(m, (2, 3)) for m in maps]), axis=0)


View = tuple[int, int]  # (setup, camera) of an NTU sample name
# fallback levels, most specific first: the name of each and the part of the view it groups by
FALLBACK_LEVELS: tuple[tuple[str, slice], ...] = (("setup+camera", slice(0, 2)), ("camera", slice(1, 2)))
FITTED, NOMINAL = "fitted", "nominal"


def fallback_registrations(
    views: Sequence[View], fitted: Sequence[Affine | None]
) -> list[tuple[Affine | None, str]]:
    """(map, source) per video: its own fit ("fitted"), else the median of the fits of the other videos
    of its setup and camera ("setup+camera"), else of its camera in any setup ("camera"), else None
    ("nominal": the reader uses `fov_affine` with the videos' frame sizes)."""
    groups: dict[tuple[str, Hashable], list[Affine]] = {}
    for view, affine in zip(views, fitted, strict=True):
        if affine is not None:
            for level, part in FALLBACK_LEVELS:
                groups.setdefault((level, view[part]), []).append(affine)
    medians: dict[tuple[str, Hashable], Affine] = {}
    chosen = []
    for view, affine in zip(views, fitted, strict=True):
        if affine is not None:
            chosen.append((np.reshape(affine, (2, 3)), FITTED))
            continue
        level = next(((lv, view[part]) for lv, part in FALLBACK_LEVELS if (lv, view[part]) in groups), None)
        if level is None:
            chosen.append((None, NOMINAL))
            continue
        if level not in medians:
            medians[level] = median_affine(groups[level])
        chosen.append((medians[level], level[0]))
    return chosen


def fov_affine(rgb_size: Sequence[int], ir_size: Sequence[int]) -> Affine:
    """Kinect v2 nominal map for frames of (width, height) `rgb_size` and `ir_size` (see module doc)."""
    scale = [
        (ir_side / np.tan(np.radians(ir_fov) / 2)) / (rgb_side / np.tan(np.radians(rgb_fov) / 2))
        for rgb_side, ir_side, rgb_fov, ir_fov in zip(rgb_size, ir_size, RGB_FOV_DEG, IR_FOV_DEG, strict=True)
    ]
    shift = [
        ir_side / 2 - s * rgb_side / 2 for s, rgb_side, ir_side in zip(scale, rgb_size, ir_size, strict=True)
    ]
    return np.array([[scale[0], 0.0, shift[0]], [0.0, scale[1], shift[1]]])


def apply_affine(matrix: Affine, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def homogeneous(matrix: Affine) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def inverse(matrix: Affine) -> Affine:
    return np.linalg.inv(homogeneous(matrix))[:2]


def mapped_box(matrix: Affine, box: Sequence[float]) -> tuple[float, float, float, float]:
    """The axis-aligned box around the image of box (x0, y0, x1, y1) under `matrix`."""
    x0, y0, x1, y1 = box
    corners = apply_affine(matrix, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
    (a, b), (c, d) = corners.min(0), corners.max(0)
    return float(a), float(b), float(c), float(d)


# Crops. Pixel coordinates (skeleton joints, maps above) put pixel i's centre at i; a crop's normalised
# coordinates are grid_sample's with align_corners=False: −1 and 1 are the outer edges of its end pixels.


def crop_to_normalised(region: Sequence[int], flip: bool = False) -> np.ndarray:
    """3×3: frame pixel → normalised coordinates of the crop [x0, x1) × [y0, y1), mirrored if `flip`."""
    x0, y0, x1, y1 = region
    sx, sy = 2 / (x1 - x0), 2 / (y1 - y0)
    to_crop = np.array([[sx, 0, sx * (0.5 - x0) - 1], [0, sy, sy * (0.5 - y0) - 1], [0, 0, 1.0]])
    return np.diag([-1.0, 1.0, 1.0]) @ to_crop if flip else to_crop


def crop_to_pixels(region: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """3×3: frame pixel → pixel of the crop `region` resized to (width, height) `size`."""
    width, height = size
    from_normalised = np.array(
        [[width / 2, 0, width / 2 - 0.5], [0, height / 2, height / 2 - 0.5], [0, 0, 1.0]]
    )
    return from_normalised @ crop_to_normalised(region)


def grid_theta(ir_from_rgb: Affine, rgb_crop: np.ndarray, ir_crop: np.ndarray) -> np.ndarray:
    """The (2, 3) map from the IR crop's normalised coordinates to the RGB crop's: what `grid_sample`
    needs to resample RGB-crop maps (the teacher's) onto the IR crop (the student's); `*_crop` are
    `crop_to_normalised` matrices of the two streams."""
    return (rgb_crop @ np.linalg.inv(homogeneous(ir_from_rgb)) @ np.linalg.inv(ir_crop))[:2]
