"""Keep a fixed sample of a cosmic-ray session's mutants, and score a finished session.

A full run over `distill/` and `engine/evaluate.py` is ~950 mutants; at 3–25 s each on two shared cores
that is hours, so a run measures every N-th mutant. The sample is chosen by a hash of (file, operator,
occurrence), not by position, so the same mutants are drawn from two trees that differ elsewhere.

    python benchmarks/mutation/sample.py keep SESSION.sqlite N      # mark all but 1 in N as skipped
    python benchmarks/mutation/sample.py score SESSION.sqlite       # killed / run, and the survivors
"""

from __future__ import annotations

import hashlib
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult


def _drawn(module: str, operator: str, occurrence: int, every: int) -> bool:
    key = f"{module}:{operator}:{occurrence}".encode()
    return int(hashlib.sha1(key).hexdigest(), 16) % every == 0


def keep(session: str, every: int) -> None:
    with use_db(session, WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            spec = item.mutations[0]
            if not _drawn(str(spec.module_path), spec.operator_name, spec.occurrence, every):
                skipped = WorkResult(output="not drawn", worker_outcome=WorkerOutcome.SKIPPED)
                db.set_result(item.job_id, skipped)


def score(session: str) -> None:
    with use_db(session, WorkDB.Mode.open) as db:
        specs = {item.job_id: item.mutations[0] for item in db.work_items}
        run = [(job, result) for job, result in db.results if result.worker_outcome != WorkerOutcome.SKIPPED]
        pending = db.num_work_items - db.num_results
    survivors = [(job, r) for job, r in run if r.test_outcome == TestOutcome.SURVIVED]
    killed = len(run) - len(survivors)
    print(f"{session}: {len(run)} mutants run, {killed} killed, {len(survivors)} survived, {pending} pending")
    if run:
        print(f"score {100 * killed / len(run):.1f} %")
    for spec in sorted((specs[job] for job, _ in survivors), key=lambda s: (str(s.module_path), s.start_pos)):
        print(f"  {spec.module_path}:{spec.start_pos[0]} {spec.operator_name} #{spec.occurrence}")


if __name__ == "__main__":
    command, path, *rest = sys.argv[1:]
    keep(path, int(rest[0])) if command == "keep" else score(path)
