"""The synthetic NTU generator: layout, determinism, and skeletons that agree with the pixels."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest

from arctic_kd.data.ntu import SampleName, index_ntu
from arctic_kd.data.protocols import split
from arctic_kd.data.skeleton import read_skeleton
from arctic_kd.data.synth import ACTIONS, SynthConfig, generate, is_rendered, rendered_config
from arctic_kd.data.synth import folder as synth_folder
from arctic_kd.data.synth.dataset import render_take
from arctic_kd.data.synth.folder import sample_paths
from arctic_kd.data.synth.pkummd import generate as generate_pkummd
from arctic_kd.data.video import VideoReader
from arctic_kd.errors import ArcticError, DataError
from arctic_kd.experiments.demo import ensure_synthetic

TINY = SynthConfig(num_classes=2, performers=3, setups=2, replications=1, min_frames=10, max_frames=12)


def decode_all(path) -> np.ndarray:
    with VideoReader(path) as video:
        return video.read(range(video.num_frames))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", TINY, workers=2, progress=False)


def test_layout_names_and_class_file(tiny_root):
    index = index_ntu(tiny_root)
    names = sorted(str(s.name) for s in index.samples)
    assert names == sorted(str(n) for n in TINY.sample_names())
    assert len(names) == 2 * 3 * 1 * 3  # classes × performers × replications × cameras
    assert not index.missing(("rgb", "ir", "skeleton"))
    assert index.class_names == [a.name for a in ACTIONS[:2]]
    assert is_rendered(tiny_root, TINY)
    assert not is_rendered(tiny_root, dataclasses.replace(TINY, seed=1))
    assert json.loads((tiny_root / "synth.json").read_text())["samples"] == len(names)


def test_a_pipeline_uses_the_synthetic_dataset_it_finds_and_never_renders_over_another(tiny_root, capsys):
    modified = (tiny_root / "synth.json").stat().st_mtime_ns
    assert rendered_config(tiny_root) == TINY
    assert ensure_synthetic(tiny_root, None, progress=False) == TINY  # as `arctic bench --data DIR` reads it
    said = capsys.readouterr().out
    assert f"using the synthetic dataset in {tiny_root} (num_classes=2, performers=3" in said
    assert ensure_synthetic(tiny_root, TINY, progress=False) == TINY
    with pytest.raises(
        ArcticError, match=r"holds a synthetic dataset of other settings \(seed=0; asked: seed=1\)"
    ):
        ensure_synthetic(tiny_root, dataclasses.replace(TINY, seed=1), progress=False)
    assert (tiny_root / "synth.json").stat().st_mtime_ns == modified  # nothing was rendered again


def test_rendering_never_writes_into_a_folder_that_holds_another_dataset(tmp_path):
    real = tmp_path / "ntu60"
    video = real / "nturgb+d_rgb" / f"{TINY.sample_names()[0]}_rgb.avi"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"a real recording")
    with pytest.raises(DataError, match=r"holds files but no synth\.json"):
        generate(real, TINY, workers=1, progress=False)
    with pytest.raises(DataError, match="nothing is rendered into it"):
        ensure_synthetic(real, None, progress=False)  # `arctic demo --data /data/ntu60`
    assert video.read_bytes() == b"a real recording" and not (real / "synth.json").exists()
    with pytest.raises(DataError, match="is not a folder"):
        ensure_synthetic(video, None, progress=False)


def test_rendering_again_with_fewer_samples_leaves_none_of_the_earlier_ones(tiny_root, tmp_path):
    root = tmp_path / "again"
    shutil.copytree(tiny_root, root)
    fewer = dataclasses.replace(TINY, num_classes=1)
    generate(root, fewer, workers=1, progress=False)
    names = sorted(str(s.name) for s in index_ntu(root).samples)
    assert names == sorted(str(n) for n in fewer.sample_names()) and len(names) < len(TINY.sample_names())
    assert len(list((root / "nturgb+d_rgb").iterdir())) == len(names)


def folder_with_a_recording(root, marker: str):
    (root / "nturgb+d_rgb").mkdir(parents=True)
    (root / "nturgb+d_rgb" / "S001C001P001R001A001_rgb.avi").write_bytes(b"a recording")
    (root / "synth.json").write_text(marker)
    return root


@pytest.mark.parametrize("marker", ["not json", "[1, 2]", '{"generator": "someone else"}'])
def test_a_damaged_or_foreign_synth_json_beside_other_files_is_refused_naming_the_folder(tmp_path, marker):
    root = folder_with_a_recording(tmp_path / "damaged", marker)
    assert rendered_config(root) is None
    with pytest.raises(DataError, match=f"^{re.escape(str(root))}: holds files but no synth.json"):
        ensure_synthetic(root, None, progress=False)


def test_this_generators_marker_without_readable_settings_is_its_own_unfinished_render(tmp_path):
    root = folder_with_a_recording(tmp_path / "unfinished", '{"generator": "arctic-kd synthetic NTU"}')
    assert rendered_config(root) is None and not synth_folder.is_foreign_folder(root)


def test_a_render_of_the_other_layout_is_not_rendered_over(tmp_path):
    pku = tmp_path / "pku"
    generate_pkummd(pku, TINY, workers=1, progress=False)
    marker = (pku / "synth.json").read_text()
    with pytest.raises(DataError, match=r"no synth\.json of this generator \(arctic-kd synthetic NTU\)"):
        ensure_synthetic(pku, None, progress=False)
    assert (pku / "synth.json").read_text() == marker and not (pku / "nturgb+d_rgb").exists()


def test_an_interrupted_render_is_marked_incomplete_and_rendered_again(tmp_path, monkeypatch):
    root = tmp_path / "tiny"

    def interrupted(*args):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(synth_folder, "map_in_workers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(root, TINY, workers=1, progress=False)
    assert json.loads((root / "synth.json").read_text())["complete"] is False
    assert rendered_config(root) is None and not is_rendered(root, TINY)
    with pytest.raises(ArcticError, match=r"holds an unfinished synthetic dataset of other settings"):
        ensure_synthetic(root, SynthConfig(), progress=False)
    monkeypatch.undo()
    assert ensure_synthetic(root, None, progress=False) == TINY  # finished with its own settings
    assert rendered_config(root) == TINY


def test_videos_have_kinect_like_geometry(tiny_root):
    name = TINY.sample_names()[0]
    paths = sample_paths(tiny_root, name)
    with VideoReader(paths["rgb"]) as rgb, VideoReader(paths["ir"]) as ir:
        assert (rgb.width, rgb.height) == TINY.rgb_size
        assert (ir.width, ir.height) == TINY.ir_size
        assert rgb.num_frames == ir.num_frames == len(read_skeleton(paths["skeleton"]).frames)
        assert TINY.min_frames <= rgb.num_frames <= TINY.max_frames
    assert rgb.width / rgb.height == pytest.approx(16 / 9, abs=0.01)
    assert ir.width / ir.height == pytest.approx(512 / 424, abs=0.01)


def test_same_seed_same_frames_other_seed_other_frames(tiny_root, tmp_path):
    again = generate(tmp_path / "again", TINY, workers=1, progress=False)
    other = generate(tmp_path / "other", dataclasses.replace(TINY, seed=7), workers=1, progress=False)
    for name in TINY.sample_names()[:4]:
        for key in ("rgb", "ir"):
            first = decode_all(sample_paths(tiny_root, name)[key])
            assert np.array_equal(first, decode_all(sample_paths(again, name)[key]))
            different = decode_all(sample_paths(other, name)[key])
            assert first.shape != different.shape or np.abs(first.astype(int) - different).mean() > 2
        skeleton = sample_paths(tiny_root, name)["skeleton"].read_bytes()
        assert skeleton == sample_paths(again, name)["skeleton"].read_bytes()


def test_protocols_apply_unchanged(tiny_root):
    names = [s.name for s in index_ntu(tiny_root).samples]
    train, test = split(names, "ntu60-xsub")
    assert {n.performer for n in train} == {1, 2} and {n.performer for n in test} == {3}
    train, test = split(names, "ntu60-xview")
    assert {n.camera for n in train} == {2, 3} and {n.camera for n in test} == {1}
    train, test = split(names, "ntu120-xset")
    assert {n.setup for n in train} == {2} and {n.setup for n in test} == {1}


@pytest.mark.parametrize("action", [1, 9, 11])  # a plain motion, the cup and the phone
def test_skeleton_pixels_land_on_the_figure(tmp_path, action):
    config = dataclasses.replace(TINY, num_classes=12)
    take = SampleName(1, 0, 1, 1, action)
    root = tmp_path / "one"
    from arctic_kd.data.synth.folder import write_take

    write_take(config, root, take)
    for render in render_take(config, take, with_masks=True):
        skeleton = read_skeleton(sample_paths(root, render.name)["skeleton"]).to_array(max_bodies=1)[:, 0]
        hits = {"depth": [], "color": []}
        for t in range(len(skeleton)):
            for key, columns, masks in (
                ("depth", [3, 4], render.ir_masks),
                ("color", [5, 6], render.rgb_masks),
            ):
                x, y = np.round(skeleton[t, :, columns].T).astype(int).T
                inside = (x >= 0) & (y >= 0) & (x < masks[t].shape[1]) & (y < masks[t].shape[0])
                hits[key].append(masks[t][y[inside], x[inside]])
        for key, values in hits.items():
            values = np.concatenate(values)
            assert values.size > 0.9 * len(skeleton) * 25, f"{key}: most joints should be in the frame"
            assert values.all(), f"{key}: {np.count_nonzero(~values)} joint pixels off the figure"


def test_ir_body_warm_and_held_object_vivid_in_rgb_faint_but_present_in_ir():
    quiet = dataclasses.replace(TINY, num_classes=12, ir_noise=0.0, rgb_noise=0.0)
    drink = 1 + [a.name for a in ACTIONS].index("drink water")  # a red cup in the right hand
    take = SampleName(1, 0, 1, 1, drink)
    cup = render_take(quiet, take, with_masks=True)[0]
    bare = render_take(dataclasses.replace(quiet, object_scale=1e-3), take, with_masks=True)[0]
    deltas = {"rgb": [], "ir": []}
    for t in range(len(cup.ir)):
        body, background = cup.ir[t][cup.ir_masks[t]], cup.ir[t][~cup.ir_masks[t]]
        assert body.mean() > background.mean() + 60, "the figure is warm on a cool background"
        for key, frames, masks, plain, plain_masks in (
            ("rgb", cup.rgb, cup.rgb_masks, bare.rgb, bare.rgb_masks),
            ("ir", cup.ir, cup.ir_masks, bare.ir, bare.ir_masks),
        ):
            held = masks[t] & ~plain_masks[t]  # where only the object covers the background
            diff = np.abs(frames[t].astype(float) - plain[t]).reshape(*held.shape, -1).max(-1)
            deltas[key].append(diff[held])
    rgb, ir = np.concatenate(deltas["rgb"]), np.concatenate(deltas["ir"])
    assert rgb.size > 20 and ir.size > 5
    assert rgb.mean() > 60, "vivid in RGB"
    assert 3 < ir.mean() < 40, "faint but present in IR"
