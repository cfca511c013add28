"""What several command groups share: the config options, the config they give, and one command's parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from arctic_kd.config import DataConfig
from arctic_kd.presets import CONFIG_PRESETS, preset_names, resolve_config

DEFAULT_DATA = Path(DataConfig.root)  # where synth, demo and bench put (and look for) the synthetic dataset


def command(commands, name: str, run, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose `--help` keeps its description's layout and whose parse result names `run`."""
    parser = commands.add_parser(
        name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run)
    return parser


def add_config_options(
    parser: argparse.ArgumentParser, default: str | None = "demo", default_help: str = "%(default)s"
) -> None:
    """--config and --set, spelled alike in every command that reads a config."""
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE|PRESET",
        help=f"YAML config, or a preset: {', '.join(preset_names(CONFIG_PRESETS))} (default: {default_help})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.epochs=30 --set data.root=/data/ntu60 "
        "(repeatable; values are YAML)",
    )


def config_from_args(args: argparse.Namespace):
    """The config that --config and --set describe (without --config: the package defaults)."""
    from arctic_kd.config import load_config

    return load_config(resolve_config(args.config) if args.config else None, args.set)
