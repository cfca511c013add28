"""Pictures: learning curves, confusion matrices, activation maps (PNG, GIF) and the HTML run report."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from arctic_kd.cli import main
from arctic_kd.data.ntu import SampleName
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.synth.pkummd import generate as generate_pkummd
from arctic_kd.errors import DataError
from arctic_kd.use.report import build_report
from arctic_kd.use.viz.activations import choose_samples, collect_panels, load_model, split_test_samples
from arctic_kd.use.viz.confusion import plot_confusion
from arctic_kd.use.viz.curves import plot_learning_curves, read_metrics
from tests.test_manifest import tiny_rows, write_manifest
from tests.test_pkummd import PKU
from tests.trained import TINY_MODEL, tiny_model_args, trained_run


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory):
    return {
        "teacher": trained_run(tmp_path_factory, tiny_dataset, "rgb"),
        "ir": trained_run(tmp_path_factory, tiny_dataset, "ir"),
        "ir-other": trained_run(tmp_path_factory, tiny_dataset, "ir", 1),
    }


def image(path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 2000
    return np.asarray(Image.open(path).convert("RGB"))


def test_learning_curves_of_a_run(runs, tmp_path, capsys):
    assert main(["viz", "curves", str(runs["ir"]), "--out", str(tmp_path / "curves.png")]) == 0
    assert image(tmp_path / "curves.png").shape[1] > 1000  # three panels side by side
    assert "wrote" in capsys.readouterr().out


def test_metrics_of_a_resumed_run_keep_the_latest_line_per_epoch(tmp_path):
    log = tmp_path / "metrics.jsonl"
    lines = [{"epoch": 1, "train_ce": 2.0}, {"epoch": 2, "train_ce": 1.5}, {"epoch": 2, "train_ce": 1.2}]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert [r["train_ce"] for r in read_metrics(log)] == [2.0, 1.2]
    assert plot_learning_curves(log, tmp_path / "c.png").is_file()  # losses only, no accuracy or lr
    log.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2: not a metrics line"):
        read_metrics(log)


def test_confusion_matrix_png_and_shape_check(runs, tmp_path):
    names = ["wave hand", "clapping", "a much longer class name"]
    out = plot_confusion([[5, 1, 0], [0, 6, 0], [2, 0, 4]], names, tmp_path / "m.png", "three classes")
    image(out)
    with pytest.raises(ValueError, match="does not fit 2 class names"):
        plot_confusion([[1]], names[:2], tmp_path / "bad.png")
    assert main(["viz", "confusion", str(runs["ir"] / "last.pt"), "--out", str(tmp_path / "c.png")]) == 0
    image(tmp_path / "c.png")


def test_samples_of_every_class_come_before_a_second_of_any(tmp_path):
    def sample(action: int, camera: int) -> PairedSample:
        name = SampleName(1, camera, 3, 1, action)
        return PairedSample(str(name), name.label, tmp_path, tmp_path)

    samples = {s.sample_id: s for s in (sample(a, c) for a in (1, 2, 3) for c in (1, 2))}
    chosen = choose_samples(samples, 4)
    assert [SampleName.parse(s).action for s in chosen] == [1, 2, 3, 1]


def test_activation_maps_differ_between_checkpoints_and_repeat_for_one(runs):
    students = [load_model(runs[name] / "last.pt") for name in ("ir", "ir-other", "ir")]
    (sample,) = collect_panels(students, num_samples=1)
    first, other, again = sample.panels
    assert first.maps.shape == first.frames.shape[:3] == (4, 32, 32)
    assert first.maps.min() == pytest.approx(0.0) and first.maps.max() == pytest.approx(1.0)
    assert np.abs(first.maps - other.maps).max() > 0.1
    np.testing.assert_array_equal(first.maps, again.maps)
    np.testing.assert_array_equal(first.frames, other.frames)  # same input: only the maps differ


def test_viz_activations_writes_the_grid_and_the_gif(runs, tmp_path):
    def grid(*students: str, gif: bool = False) -> np.ndarray:
        out = tmp_path / f"{'+'.join(students)}.png"
        args = ["viz", "activations", "--teacher", str(runs["teacher"] / "last.pt"), "--out", str(out)]
        for student in students:
            args += ["--student", str(runs[student] / "last.pt")]
        assert main([*args, "--num-samples", "1", *(["--gif", str(tmp_path / "a.gif")] if gif else [])]) == 0
        return image(out)

    one = grid("ir", gif=True)
    animation = Image.open(tmp_path / "a.gif")
    assert animation.n_frames == 4 and animation.size[0] == 2 * 160  # a column per network, a frame per step
    assert grid("ir", "ir-other").shape[0] > one.shape[0]  # a row per network
    other = grid("ir-other")
    changed = (np.abs(one.astype(int) - other) > 30).any(axis=2).mean()
    assert one.shape == other.shape and changed > 0.05  # the maps, not just the labels


def test_viz_activations_rejects_an_unknown_sample(runs, capsys):
    student = str(runs["ir"] / "last.pt")
    assert main(["viz", "activations", "--student", student, "--samples", "S001C001P001R001A001"]) == 2
    assert "is not a test sample" in capsys.readouterr().err


def test_report_is_one_self_contained_page(runs, tmp_path, capsys):
    assert main(["report", str(runs["ir"]), "--out", str(tmp_path / "r.html"), "--samples", "1"]) == 0
    page = (tmp_path / "r.html").read_text()
    images = page.split('src="data:image/png;base64,')[1:]
    assert len(images) == 3  # curves, confusion, activations
    for encoded in images:
        Image.open(io.BytesIO(base64.b64decode(encoded.split('"')[0]))).verify()
    assert "person_crop: false" in page and "<th>test_top1</th>" in page
    assert 'src="http' not in page and "<script" not in page
    assert "mean correlation" not in page  # no teacher to agree with
    missing = build_report(runs["ir"], tmp_path / "m.html", data_root=tmp_path / "gone")
    assert "Not available:" in missing.read_text() and missing.read_text().count("base64,") == 2


def test_report_measures_how_the_maps_follow_the_teacher_as_eval_does(runs, tmp_path, capsys):
    student, teacher = str(runs["ir"] / "last.pt"), str(runs["teacher"] / "last.pt")
    assert main(["eval", student, "--teacher", teacher, "--json"]) == 0
    agreement = json.loads(capsys.readouterr().out)["agreement"]
    page = build_report(runs["ir"], tmp_path / "r.html", teacher=teacher, num_samples=1).read_text()
    expected = f"Over the {agreement['clips']} test clips"
    assert expected in page and f"mean correlation of {agreement['map_correlation']:.3f}" in page
    missing = build_report(runs["ir"], tmp_path / "m.html", teacher=teacher, data_root=tmp_path / "gone")
    assert "Map agreement with the teacher not available:" in missing.read_text()
    ir_teacher = build_report(runs["ir"], tmp_path / "i.html", teacher=runs["ir-other"] / "last.pt")
    assert "not available: --teacher compares an IR student with an RGB teacher" in ir_teacher.read_text()


# The same pictures on the other dataset kinds: the samples come through the loaders, as in evaluation.
TINY_PKU = dataclasses.replace(PKU, num_classes=2, performers=2)  # test_pkummd's layout, smaller


@pytest.fixture(scope="module")
def pku_run(tmp_path_factory):
    root = generate_pkummd(tmp_path_factory.mktemp("pku") / "avi", TINY_PKU, workers=1, progress=False)
    out = tmp_path_factory.mktemp("pku-run") / "ir"
    data = ["data.dataset=pkummd", f"data.root={root}", "data.protocol=pkummd-xview"]
    assert main(["train", "--modality", "ir", "--out", str(out), *TINY_MODEL, *tiny_model_args(*data)]) == 0
    return out


@pytest.fixture(scope="module")
def manifest_run(tiny_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lists")
    manifest = write_manifest(folder, tiny_rows(tiny_dataset, folder))
    out = tmp_path_factory.mktemp("manifest-run") / "ir"
    data = ["data.dataset=manifest", f"data.manifest={manifest}", "data.protocol=manifest-split"]
    assert main(["train", "--modality", "ir", "--out", str(out), *TINY_MODEL, *tiny_model_args(*data)]) == 0
    return out


@pytest.mark.parametrize("kind", ["pku_run", "manifest_run"])
def test_activation_panels_and_the_report_work_on_pkummd_and_manifests(kind, request, tmp_path):
    run = request.getfixturevalue(kind)
    model = load_model(run / "last.pt")
    samples = collect_panels([model], num_samples=2)
    test_ids = split_test_samples(model.config.data, ["ir"])
    assert len(samples) == 2 and all(s.sample_id in test_ids for s in samples)
    assert {s.true_class for s in samples} == set(model.class_names)  # one sample of each class
    assert samples[0].panels[0].maps.shape == (4, 32, 32)
    page = build_report(run, tmp_path / "r.html", num_samples=1).read_text()
    assert "Not available" not in page and page.count("base64,") == 3  # curves, confusion, activations
