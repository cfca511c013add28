#!/bin/sh
# Mutation score of the method's arithmetic (issue 27): cosmic-ray 8.7.0 over src/arctic_kd/distill/ and
# src/arctic_kd/engine/evaluate.py, 1 mutant in EVERY (default 6), each against its own test files.
# cosmic-ray rewrites the files it mutates in place, so it runs on a copy of the tree (TREE, e.g. made by
# `git archive HEAD | tar -x -C TREE`), never on the working tree; the copy's src/ is put first on the path.
#   nice -n 19 benchmarks/mutation/run.sh TREE OUT [EVERY]
set -eu
tree=$(cd "$1" && pwd); mkdir -p "$2"; out=$(cd "$2" && pwd); every=${3:-6}
bin=$(dirname "$(command -v cosmic-ray)")
cd "$tree"
export PYTHONPATH="$tree/src" PATH="$bin:$PATH"
for name in distill evaluate; do
    config="benchmarks/mutation/$name.toml"
    cosmic-ray init "$config" "$out/$name.sqlite"
    cr-filter-operators "$out/$name.sqlite" "$config"
    python benchmarks/mutation/sample.py keep "$out/$name.sqlite" "$every"
    cosmic-ray exec "$config" "$out/$name.sqlite"
    python benchmarks/mutation/sample.py score "$out/$name.sqlite" | tee "$out/$name.txt"
done
