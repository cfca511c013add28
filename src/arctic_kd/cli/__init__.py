"""The `arctic` command: parse arguments, call one library function per subcommand, report errors plainly.

Each command lives whole (help text, parser, handler) in the module of its group: `data`, `train`,
`experiments`, `use`; this module only assembles them and turns failures into one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from arctic_kd import __version__
from arctic_kd.cli import data, experiments, train, use
from arctic_kd.errors import ArcticError

DESCRIPTION = """\
arctic-kd: teach an infrared (IR) action recogniser with an RGB video teacher (ARCTIC distillation).

Data is paired RGB + IR video in the NTU RGB+D layout:
  ROOT/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi
  ROOT/nturgb+d_ir/SsssCcccPpppRrrrAaaa_ir.avi
  ROOT/nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton
`arctic synth` renders such a dataset, so everything runs without downloading anything. PKU-MMD phase 1
(`--set data.dataset=pkummd`) and any rig listed in a CSV manifest (`--set data.dataset=manifest`) work too.

Typical session:
  arctic demo                               # synthetic data, then a check of the whole data path
  arctic synth data/synth --performers 20   # a bigger synthetic dataset
  arctic check /datasets/ntu60 --protocol ntu60-xsub --split test
  arctic prepare /datasets/ntu60 --out /fast/ntu60-store   # decode once; train with data.store
"""


# in the order `arctic --help` lists them: the way a user meets them, not grouped by module
COMMANDS = (
    data.add_synth,
    data.add_check,
    train.add_train,
    train.add_distill,
    train.add_eval,
    experiments.add_demo,
    data.add_prepare,
    experiments.add_bench,
    experiments.add_tune,
    use.add_predict,
    use.add_export,
    use.add_viz,
    use.add_report,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arctic", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"arctic-kd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except ArcticError as error:
        print(f"arctic {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arctic {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which has stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush stays quiet
        return 141
    except OSError as error:  # permission, not a folder, disk full, ...: the path and the cause
        from arctic_kd.errors import os_error

        print(f"arctic {args.command}: error: {os_error(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug or an unforeseen failure: one line, the trace in a file
        print(f"arctic {args.command}: internal error: {_last_resort(error)}", file=sys.stderr)
        return 3


def _last_resort(error: Exception) -> str:
    """One line about an unexpected error; its full trace goes to a file the line names (for a bug report)."""
    import tempfile
    import traceback

    first = (str(error).strip().splitlines() or [""])[0]
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    try:
        handle, path = tempfile.mkstemp(prefix="arctic-error-", suffix=".txt")
        with os.fdopen(handle, "w") as trace:
            trace.write(f"arctic {' '.join(sys.argv[1:])}\n")
            traceback.print_exception(error, file=trace)
    except OSError:
        return f"{text} (the full trace could not be written)"
    return f"{text} (full trace: {path}; please include it in a bug report)"
