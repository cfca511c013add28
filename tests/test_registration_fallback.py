"""A video whose skeleton gives no RGB→IR map borrows one fitted on others of its setup and camera, else of
its camera, else gets the nominal map; each sample records which."""

from __future__ import annotations

import dataclasses

import numpy as np

from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import paired_samples
from arctic_kd.data.ntu import index_ntu
from arctic_kd.data.registration import apply_affine, fallback_registrations, inverse

A = np.array([[0.34, 0.0, -80.0], [0.0, 0.35, 10.0]])
B = np.array([[0.36, 0.01, -84.0], [0.0, 0.33, 14.0]])
C = np.array([[0.35, 0.0, -70.0], [0.0, 0.34, 20.0]])


def test_each_level_of_the_fallback_and_its_medians():
    views = [(1, 1), (1, 1), (1, 1), (2, 1), (2, 1), (4, 1), (3, 2)]
    fits = [A, B, None, C, None, None, None]
    chosen = fallback_registrations(views, fits)
    assert [source for _, source in chosen] == [
        "fitted",
        "fitted",
        "setup+camera",
        "fitted",
        "setup+camera",
        "camera",
        "nominal",
    ]
    assert np.array_equal(chosen[2][0], (A + B) / 2)  # the median of two is their mean
    assert np.array_equal(chosen[4][0], C)
    assert np.array_equal(chosen[5][0], [[0.35, 0.0, -80.0], [0.0, 0.34, 14.0]])  # element-wise of A, B, C
    assert chosen[6][0] is None


def test_a_sample_without_skeleton_borrows_its_view_s_map_and_crops_rgb_through_it(tiny_dataset):
    samples = index_ntu(tiny_dataset).complete(("rgb", "ir", "skeleton"))
    blind = samples[0]
    peers = [s for s in samples if (s.name.setup, s.name.camera) == (blind.name.setup, blind.name.camera)]
    assert len(peers) > 2
    entries = {e.sample_id: e for e in paired_samples(samples, person_crop=True)}
    # the same sample without its skeleton file: whole frames, and the median map of its setup and camera
    without = paired_samples([dataclasses.replace(blind, skeleton=None), *samples[1:]], person_crop=True)[0]
    assert without.person is None and without.registration_source == "setup+camera"
    fitted = [np.reshape(entries[str(s.name)].registration, (2, 3)) for s in peers[1:]]
    assert np.allclose(np.reshape(without.registration, (2, 3)), np.median(np.stack(fitted), axis=0))
    # renders share one camera model per view: the borrowed map is within a pixel of the sample's own fit
    own = np.reshape(entries[str(blind.name)].registration, (2, 3))
    corners = np.array([[0, 0], [255, 143], [128, 72]])
    assert (
        np.abs(
            apply_affine(own, corners) - apply_affine(np.reshape(without.registration, (2, 3)), corners)
        ).max()
        < 1
    )
    assert all(e.registration_source == "fitted" for e in entries.values())


def test_a_borrowed_map_carries_the_ir_box_into_rgb(tiny_dataset, monkeypatch):
    """With boxes but no fit (too few tracked pairs), the RGB box is the IR box's image under the borrowed
    map, so both streams crop what that map calls the same region."""
    import arctic_kd.data.loaders as loaders

    samples = index_ntu(tiny_dataset).complete(("rgb", "ir", "skeleton"))
    real_track = loaders.person_track
    first = samples[0].skeleton

    def no_fit_for_first(path):
        track = real_track(path)
        return dataclasses.replace(track, registration=None) if path == first else track

    monkeypatch.setattr(loaders, "person_track", no_fit_for_first)
    entry = paired_samples(samples, person_crop=True)[0]
    assert entry.registration_source == "setup+camera"
    x0, y0, x1, y1 = entry.person["ir"]
    corners = apply_affine(inverse(np.reshape(entry.registration, (2, 3))), [[x0, y0], [x1, y1]])
    assert np.allclose(entry.person["rgb"], [*corners[0], *corners[1]])
    clip = PairedClipDataset([entry], num_frames=4, rgb_size=(32, 32), ir_size=(32, 32))[0]
    assert clip["rgb"].shape == (3, 4, 32, 32) and clip["ir_from_rgb"].shape == (2, 3)
