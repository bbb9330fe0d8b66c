"""What each hazard poisons, measured: for every unsafe case of the test corpus
(tests/corpus), run the original graph once on the feed that triggers its
hazard and report whether the loss, the gradients and the variables after one
train step are finite.  The README's "what each hazard poisons" table comes
from this output.

    .venv/bin/python bench/poisoning.py          # ~1 minute
"""
from __future__ import annotations

import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tests.corpus import CASES, build, unsafe_cases  # noqa: E402
from tests.corpus.runner import run_case  # noqa: E402


def _finite(values) -> bool:
    return all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in values)


def main() -> None:
    tf.compat.v1.disable_eager_execution()
    rows = collections.defaultdict(list)
    print(f"{'case':48} {'codes':12} loss grads vars(1 step)")
    for name in unsafe_cases():
        builder = CASES[name]
        case = build(name)
        r = run_case(case, feeds="trigger", steps=1)
        loss = np.isfinite(r["loss"])
        grads = _finite(r["grads"].values())
        bad_vars = sum(not _finite([v]) for v in r["variables"].values())
        has_train = bool(case.train_op)
        cell = (loss, grads, bad_vars, len(r["variables"]), has_train)
        for code in builder.codes:
            rows[code].append((name, *cell))
        print(f"{name:48} {','.join(builder.codes):12} {'ok ' if loss else 'NaN'}  {'ok ' if grads else 'NaN'}  "
              + (f"{bad_vars}/{len(r['variables'])} non-finite" if has_train else "(no train op)")
              + ("  [hidden_on_tf2]" if builder.hidden_on_tf2 else ""))
    print()
    print("per hazard (cases: loss non-finite / gradients non-finite / some variable non-finite after a step)")
    for code in sorted(rows):
        cases = rows[code]
        n = len(cases)
        print(f"{code}: {n} cases: loss {sum(not c[1] for c in cases)}/{n}, "
              f"gradients {sum(not c[2] for c in cases)}/{n}, "
              f"variables {sum(c[3] > 0 for c in cases if c[5])}/{sum(c[5] for c in cases)}")


if __name__ == "__main__":
    main()
