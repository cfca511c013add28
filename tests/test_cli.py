"""The `arctic` command: help that teaches, and bad data reported by file, never as a traceback."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest

from arctic_kd.cli import COMMANDS, build_parser, main
from arctic_kd.data.synth.folder import sample_paths
from arctic_kd.data.video import write_video
from tests.conftest import TINY_SYNTH


def test_help_lists_every_command_and_explains_the_layout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("synth", "check", "prepare", "train", "distill", "eval", "demo", "bench"):
        assert command in text
    assert "nturgb+d_ir" in text


def test_synth_help_offers_every_knob(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--num-classes",
        "--performers",
        "--ir-object-contrast",
        "--rgb-size",
        "--seed",
        "--workers",
    ):
        assert option in text


def test_synth_rejects_out_of_range_options(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--cameras", "4"]) == 2
    assert "cameras=4" in capsys.readouterr().err


@pytest.fixture
def damaged(tiny_dataset, tmp_path):
    """The tiny dataset with one of each kind of bad file among the cross-subject training samples."""
    root = tmp_path / "damaged"
    shutil.copytree(tiny_dataset, root)
    names = [n for n in TINY_SYNTH.sample_names() if n.performer in (1, 2)]
    corrupt, empty, skeleton, mismatch, missing = (sample_paths(root, n) for n in names[:5])
    corrupt["rgb"].write_bytes(b"RIFF" + bytes(range(256)) * 8)
    empty["ir"].write_bytes(b"")
    skeleton["skeleton"].write_text("12\n1\n1 2 3\n")
    write_video(mismatch["ir"], [np.zeros((106, 128), np.uint8)] * 40)  # 40 frames against about 11
    missing["ir"].unlink()
    return root, {
        "corrupt": corrupt["rgb"],
        "empty": empty["ir"],
        "skeleton": skeleton["skeleton"],
        "mismatch": mismatch["ir"],
        "missing": names[4],
    }


@pytest.mark.parametrize("workers", [0, 2])
def test_check_lists_every_bad_sample_and_fails(damaged, workers, capsys):
    root, bad = damaged
    code = main(
        ["check", str(root), "--split", "train", "--workers", str(workers), "--size", "32", "--frames", "4"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"{bad['missing']}: no ir" in out
    assert "skipped 4 bad sample(s)" in out
    for key in ("corrupt", "empty", "skeleton"):
        assert str(bad[key]) in out, key
    assert "but IR is" in out and bad["mismatch"].name in out
    assert "Traceback" not in out


def test_check_can_stop_at_the_first_bad_sample_with_a_one_line_error(damaged, capsys):
    root, bad = damaged
    code = main(["check", str(root), "--split", "train", "--workers", "2", "--stop-on-bad", "--size", "32"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("arctic check: error: ") and len(err.strip().splitlines()) == 1
    assert any(str(path) in err for key, path in bad.items() if key != "missing")


def test_check_on_a_good_dataset_reports_splits_and_clip_shapes(tiny_dataset, capsys):
    assert main(["check", str(tiny_dataset), "--size", "32", "--frames", "4", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "ntu60-xsub   train     12  test      6" in out
    assert "rgb (3, 4, 32, 32), ir (1, 4, 32, 32)" in out
    assert "no bad samples" in out


def test_a_folder_that_is_not_a_dataset_is_one_clear_line(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "no NTU RGB+D folders" in capsys.readouterr().err


def test_every_subcommand_has_a_description():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 60, name


def test_a_missing_skeleton_is_reported_but_not_a_failure(tiny_dataset, tmp_path, capsys):
    root = tmp_path / "no-skeleton"
    shutil.copytree(tiny_dataset, root)
    name = TINY_SYNTH.sample_names()[0]
    sample_paths(root, name)["skeleton"].unlink()
    assert main(["check", str(root), "--size", "32", "--frames", "4", "--workers", "0"]) == 0
    assert f"{name}: no skeleton" in capsys.readouterr().out


def _handlers(parser: argparse.ArgumentParser) -> dict[str, object]:
    """Every (sub)command under `parser` with its handler, `viz activations` and the like included."""
    found = {}
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            found[name] = sub.get_default("run")
            found.update({f"{name} {k}": v for k, v in _handlers(sub).items()})
    return found


def test_each_cli_module_holds_whole_commands():
    """A command's parser and its handler live in one group module (help, parser and handler side by side),
    and `build_parser` adds no command that is not in COMMANDS."""
    seen = set()
    for add in COMMANDS:
        parser = argparse.ArgumentParser()
        add(parser.add_subparsers())
        for name, handler in _handlers(parser).items():
            seen.add(name)
            if handler is not None:  # `viz` only groups its pictures
                assert handler.__module__ == add.__module__, f"{name}: parser in {add.__module__}"
    assert set(_handlers(build_parser())) == seen
