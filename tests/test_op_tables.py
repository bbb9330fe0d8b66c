"""Every op name graphfix's hand-kept tables mention is an op TensorFlow
registers: a misspelt or invented name (``TrueDiv``, ``BatchGather``) would
silently never match."""
import pytest

from graphfix.analysis import cones, dtypes, loss, matcher, probability, ranges, transfer
from graphfix.analysis.numeric import _NO_RECOMPUTE
from graphfix.core import optables, optypes
from rewrites import empty_reduction, safe_norm, zero_denominator
from tools import gen_op_tables

TABLES = {
    "transfer.TRANSFER": set(transfer.TRANSFER),
    "cones.ELEMENTWISE": set(cones.ELEMENTWISE),
    "cones.SINGULAR": set(cones.SINGULAR),
    "ranges.PASS_THROUGH": set(ranges.PASS_THROUGH),
    "ranges.GATHERS": set(ranges.GATHERS),
    "ranges.LEARNED_SOURCES": set(ranges.LEARNED_SOURCES),
    "optypes.VARIABLE_OPS": set(optypes.VARIABLE_OPS),
    "ranges.RANDOM_OPS": set(ranges.RANDOM_OPS),
    "dtypes.T_TYPED": set(dtypes.T_TYPED),
    "loss._NOT_LOSS_OPS": set(loss._NOT_LOSS_OPS),
    "matcher.COMMUTATIVE": set(matcher.COMMUTATIVE),
    "numeric._NO_RECOMPUTE": set(_NO_RECOMPUTE),
    "zero_denominator.DIVISIONS": set(zero_denominator.DIVISIONS) | set(zero_denominator.NORMS),
    "safe_norm.ROOTS": set(safe_norm.ROOTS) | set(safe_norm._SQUARES) | set(safe_norm._SUMS),
    "probability._PROB_PASS": set(probability._PROB_PASS),
    "empty_reduction.SOURCE_NAMES": set(empty_reduction.SOURCE_NAMES),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_op_table_names_registered_ops(tf, table):
    from tensorflow.python.framework import op_def_registry

    unknown = sorted(op for op in TABLES[table] if op_def_registry.get(op) is None)
    assert not unknown, f"{table}: {unknown}"


def test_generated_op_tables_are_those_of_the_registry(tf):
    """graphfix/core/optables.py is what tools/gen_op_tables.py writes from
    this TensorFlow's registry (regenerate it after a TensorFlow upgrade)."""
    if tf.__version__ != optables.TENSORFLOW_VERSION:
        pytest.skip(f"tables generated from TensorFlow {optables.TENSORFLOW_VERSION}, this is {tf.__version__}")
    with open(gen_op_tables.TARGET, encoding="utf-8") as f:
        assert gen_op_tables.generate() == f.read(), "run python tools/gen_op_tables.py"


def test_the_generator_reads_the_registry(tf):
    """The tables follow the registry: an op whose output were not bool would
    leave BOOL_OUTPUT, one with an extra input would change ARITY."""
    from tensorflow.python.framework import op_def_registry

    registry = {op: op_def_registry.get(op) for op in gen_op_tables.POSITIONAL}
    for op in ("Switch", "FusedBatchNormV3", "IsFinite"):
        registry[op] = op_def_registry.get(op)
    t = gen_op_tables.tables(registry)
    assert t["arity"]["Select"] == 3 and "Equal" in t["bool_output"] and "IsFinite" in t["bool_output"]
    assert t["output_args"]["Switch"] == ("output_false", "output_true")
    changed = type(registry["Equal"])()
    changed.CopyFrom(registry["Equal"])
    changed.output_arg[0].type = tf.float32.as_datatype_enum
    changed.input_arg.add().name = "extra"
    t2 = gen_op_tables.tables(dict(registry, Equal=changed))
    assert "Equal" not in t2["bool_output"] and t2["arity"]["Equal"] == 3
