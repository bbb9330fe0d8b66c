"""Every op name graphfix's hand-kept tables mention is an op TensorFlow
registers: a misspelt or invented name (``TrueDiv``, ``BatchGather``) would
silently never match."""
import pytest

from graphfix.analysis import cones, dtypes, loss, matcher, probability, ranges, transfer
from graphfix.analysis.numeric import _NO_RECOMPUTE
from graphfix.core import optypes
from rewrites import empty_reduction, safe_norm, zero_denominator

TABLES = {
    "transfer.TRANSFER": set(transfer.TRANSFER),
    "cones.ELEMENTWISE": set(cones.ELEMENTWISE),
    "cones.SINGULAR": set(cones.SINGULAR),
    "ranges.PASS_THROUGH": set(ranges.PASS_THROUGH),
    "ranges.GATHERS": set(ranges.GATHERS),
    "ranges.LEARNED_SOURCES": set(ranges.LEARNED_SOURCES),
    "optypes.VARIABLE_OPS": set(optypes.VARIABLE_OPS),
    "ranges.RANDOM_OPS": set(ranges.RANDOM_OPS),
    "dtypes.BOOL_OPS": set(dtypes.BOOL_OPS),
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


def test_bool_ops_are_the_registry_ops_with_one_bool_output(tf):
    """dtypes.BOOL_OPS lists ops whose single output is bool, as the registry says."""
    from tensorflow.python.framework import op_def_registry

    for op in dtypes.BOOL_OPS:
        outs = op_def_registry.get(op).output_arg
        assert len(outs) == 1 and outs[0].type == tf.bool.as_datatype_enum, op
