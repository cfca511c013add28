"""Memory held by the demo's in-memory frame cache (every RGB and IR video, shrunk to `data.cache_side`).

python benchmarks/bench_cache.py                      # the demo preset on data/synth
python benchmarks/bench_cache.py --set data.root=DIR  # another dataset
"""

from __future__ import annotations

import argparse
import time

from arctic_kd.config import load_config
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.loaders import protocol_samples
from arctic_kd.presets import resolve_config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="demo", help="config file or preset name (default: demo)")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    config = load_config(resolve_config(args.config), args.set)
    samples = protocol_samples(config.data, ("rgb", "ir"))
    cache = FrameCache(config.data.cache_side)
    start = time.perf_counter()
    videos = [(s.path(m), m == "ir") for s in samples.train + samples.test for m in ("rgb", "ir")]
    cache.preload(videos, config.data.workers, progress=False)
    print(
        f"{len(cache)} videos decoded in {time.perf_counter() - start:.1f} s with {config.data.workers} "
        f"workers; cache holds {cache.nbytes / 2**30:.2f} GiB (short side {config.data.cache_side})"
    )


if __name__ == "__main__":
    main()
