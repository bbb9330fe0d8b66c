"""TF2 functional control flow (issue #12): hazards inside ``If``/``While``
bodies (tf.cond, tf.while_loop, tf.map_fn, a cond nested in a while body) are
repaired in new FunctionDefs and the gradient is regenerated, so the existing
train op trains on the guarded loss.

For every v2 corpus case, as GraphDef and as MetaGraphDef: every finding is
fixed; the output re-imports; loss, gradients and applied gradients are
bit-identical on the normal feeds and finite on the trigger feeds
(``graphfix.verify`` runs both graphs in TensorFlow); training on trigger
feeds stays finite; a second rewrite changes nothing; functions the repair
did not touch are byte-identical.
"""
import pytest
import tensorflow as tf

import graphfix
from graphfix.core.model import Model
from tests.corpus.v2flow import V2_CASES, build_v2
from tests.trainutil import assert_finite, train

UNSAFE = sorted(n for n, b in V2_CASES.items() if b.codes)
SAFE = sorted(n for n, b in V2_CASES.items() if not b.codes)
FUNCTIONAL = {"If", "StatelessIf", "While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall"}


def model(case, kind):
    if kind == "meta_graph":
        return Model(kind="meta_graph", text=False, graph_def=case.meta_graph_def.graph_def,
                     meta_graph=case.meta_graph_def)
    return Model(kind="graph_def", text=False, graph_def=case.graph_def)


_BUILT = {}


def cached(name):
    if name not in _BUILT:
        _BUILT[name] = build_v2(name)
    return _BUILT[name]


@pytest.mark.parametrize("kind", ["graph_def", "meta_graph"])
@pytest.mark.parametrize("name", UNSAFE)
def test_v2_case_is_repaired_and_trains(name, kind):
    case = cached(name)
    assert {n.op for n in case.graph_def.node} & FUNCTIONAL
    original = model(case, kind)
    fixed, report = graphfix.rewrite(original)
    got = [(f.code, f.node, f.fixed, f.note) for f in report.findings]
    assert report.findings and all(f.fixed for f in report.findings), got
    assert {f.code for f in report.findings} == set(case.codes), got
    assert all("/" in f.node and f.data.get("function") for f in report.findings), got
    # check (no TensorFlow) reports exactly what rewrite fixes
    assert [(f.code, f.node) for f in graphfix.check(original).findings] == \
        [(f.code, f.node) for f in report.findings]

    # same training on normal feeds, finite on triggers (both graphs run in TensorFlow)
    result = graphfix.verify(original, fixed, trials=2)
    assert result.ok and result.bit_identical, result.render()
    if not name.startswith("v2_map_fn"):  # the Sqrt gradient at 0 is masked by TF 2.x CPU kernels
        assert result.triggered, result.render()
    # training on trigger feeds stays finite
    # (runs the train op only: TensorFlow cannot differentiate an imported rewritten
    # While twice in one process, and verify already did)
    batches = [case.feeds_trigger, case.feeds_normal, case.feeds_trigger]
    assert_finite(train(tf, fixed.meta_graph or fixed.graph_def, ["train"], batches))

    # the library: untouched functions byte-identical, every called function present
    old = {f.signature.name: f.SerializeToString(deterministic=True) for f in original.graph_def.library.function}
    new = {f.signature.name: f.SerializeToString(deterministic=True) for f in fixed.graph_def.library.function}
    assert all(old[k] == v for k, v in new.items() if k in old)
    assert any(k not in old for k in new)
    called = {v.func.name for n in fixed.graph_def.node for v in n.attr.values() if v.HasField("func")}
    assert called <= set(new)

    # idempotent
    again, report2 = graphfix.rewrite(fixed)
    assert again is fixed and not report2.findings


@pytest.mark.parametrize("name", SAFE)
def test_clean_v2_graph_is_byte_identical(name, tmp_path):
    case = cached(name)
    src = tmp_path / "clean.pb"
    src.write_bytes(case.graph_def.SerializeToString())
    m = graphfix.load(str(src))
    fixed, report = graphfix.rewrite(m)
    assert not report.findings
    out = tmp_path / "out.pb"
    graphfix.save(fixed, str(out))
    assert out.read_bytes() == src.read_bytes()


def test_repaired_function_gets_a_new_name_and_check_reports_it_fixable():
    case = cached("v2_cond_boolean_mask_adam")
    report = graphfix.check(model(case, "graph_def"))
    assert [f.code for f in report.findings] == ["GF001"] and report.findings[0].fixable
    fixed, _ = graphfix.rewrite(model(case, "graph_def"))
    (site,) = [n for n in fixed.graph_def.node if n.name == "loss/aux"]
    then_old = [n for n in case.graph_def.node if n.name == "loss/aux"][0].attr["then_branch"].func.name
    then_new = site.attr["then_branch"].func.name
    assert then_new != then_old and "_graphfix" in then_new
    # the forward op lists exactly the outputs its branches return
    lib = {f.signature.name: f for f in fixed.graph_def.library.function}
    assert len(site.attr["Tout"].list.type) == len(lib[then_new].signature.output_arg)


def _saved_model(path, name):
    """The v2 case ``name`` written as a SavedModel v1 (variables + a
    ``serving_default`` signature serving the loss); returns the case."""
    from tests.corpus import v2flow

    case = cached(name)
    g = tf.Graph()
    with g.as_default(), v2flow.control_flow_v2():
        tf.compat.v1.set_random_seed(0)
        built = v2flow.V2_CASES[name].__wrapped__()
        init = tf.compat.v1.variables_initializer(tf.compat.v1.global_variables(), name="init")
        inputs = {k.split("/")[-1].split(":")[0]: g.get_tensor_by_name(k) for k in built.feeds_normal}
        sig = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
            inputs=inputs, outputs={"loss": built.loss})
        with tf.compat.v1.Session() as sess:
            sess.run(init)
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(sess, [tf.compat.v1.saved_model.tag_constants.SERVING],
                                                 signature_def_map={"serving_default": sig})
            builder.save()
    return case


def _serve(path, feeds, train_steps=0):
    g = tf.Graph()
    with g.as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(path))
        sig = meta.signature_def["serving_default"]
        fd = {sig.inputs[k.split("/")[-1].split(":")[0]].name: v for k, v in feeds.items()}
        for _ in range(train_steps):
            sess.run("train", fd)
        return sess.run(sig.outputs["loss"].name, fd)


@pytest.mark.parametrize("name", ["v2_cond_boolean_mask_adam", "v2_shared_function_adam"])
def test_saved_model_with_functional_control_flow(name, tmp_path):
    import math

    from tests.helpers import cli, run_cli

    src = tmp_path / "model"
    case = _saved_model(src, name)
    out = tmp_path / "fixed"
    r = cli("rewrite", src, out)
    assert r.returncode == 0, r.stdout + r.stderr
    # the signature still serves: same loss on normal feeds, finite where the original is NaN, trains finite
    assert _serve(src, case.feeds_normal) == _serve(out, case.feeds_normal)
    assert math.isnan(_serve(src, case.feeds_trigger))
    assert math.isfinite(_serve(out, case.feeds_trigger, train_steps=2))
    result = graphfix.verify(str(src), str(out), trials=1)
    assert result.ok and result.bit_identical and result.triggered, result.render()
    again = tmp_path / "again"
    r = run_cli("rewrite", out, again)  # in-process: the first rewrite ran the real CLI
    assert r.returncode == 0, r.stdout + r.stderr
    assert (again / "saved_model.pb").read_bytes() == (out / "saved_model.pb").read_bytes()


def test_output_is_deterministic_across_processes(tmp_path):
    """TensorFlow names the functions it makes after a process-wide counter;
    graphfix renames them, so two runs write the same bytes: a fresh process
    (counter at its start) and this test process (counter far along, after
    the graphs this process built before), twice."""
    from tests.helpers import cli

    src = tmp_path / "nested.pb"
    src.write_bytes(cached("v2_nested_cond_in_while_adam").graph_def.SerializeToString())
    out = tmp_path / "out.pb"
    r = cli("rewrite", src, out)
    assert r.returncode == 0, r.stdout + r.stderr
    outs = [out.read_bytes()]
    for k in range(2):
        fixed, _ = graphfix.rewrite(graphfix.load(str(src)))
        path = tmp_path / f"inprocess{k}.pb"
        graphfix.save(fixed, str(path))
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_gradient_that_cannot_be_regenerated_leaves_the_finding_unfixed(monkeypatch):
    """If TensorFlow cannot differentiate the repaired graph, nothing changes:
    the finding stays unfixed with the reason and the graph is returned as is."""
    case = cached("v2_cond_boolean_mask_adam")
    original = model(case, "graph_def")

    def refuse(*args, **kwargs):
        raise LookupError("no gradient for this op")

    monkeypatch.setattr(tf.compat.v1, "gradients", refuse)
    fixed, report = graphfix.rewrite(original)
    (f,) = report.findings
    assert not f.fixed and "cannot regenerate the gradient" in f.note and "no gradient for this op" in f.note
    assert report.remaining == 1
    assert fixed is original


def test_top_level_and_function_hazards_in_one_graph():
    """A masked mean in the top-level graph (local gradient patch) and one
    inside a tf.cond branch (gradient regenerated) of the same loss."""
    from tests.corpus import v2flow

    g = tf.Graph()
    with g.as_default(), v2flow.control_flow_v2():
        x = tf.compat.v1.placeholder(tf.float32, [6, 4], name="x")
        mask = tf.compat.v1.placeholder(tf.float32, [6], name="mask")
        w = tf.compat.v1.get_variable("w", [4, 1], initializer=tf.compat.v1.glorot_uniform_initializer(seed=3))
        per = tf.reshape(tf.matmul(x, w), [6])
        main = tf.math.divide(tf.reduce_sum(tf.square(per) * mask), tf.reduce_sum(mask), name="main")
        aux = tf.cond(tf.reduce_sum(mask) >= 0, lambda: tf.reduce_mean(tf.boolean_mask(per, mask > 0)),
                      lambda: tf.constant(0.0))
        loss = tf.add(main, aux, name="loss")
        tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss, name="train")
        tf.compat.v1.global_variables_initializer()
    original = Model(kind="graph_def", text=False, graph_def=g.as_graph_def())
    fixed, report = graphfix.rewrite(original)
    assert sorted((f.code, f.fixed) for f in report.findings) == [("GF001", True), ("GF002", True)], report.findings
    result = graphfix.verify(original, fixed, trials=2)
    assert result.ok and result.bit_identical and result.triggered, result.render()


@pytest.mark.parametrize("strategy", ["local", "whole"])
@pytest.mark.parametrize("name", ["v2_nested_cond_in_while_adam", "v2_shared_function_momentum"])
def test_both_gradient_strategies_train_the_same(name, strategy, monkeypatch):
    """The gradient scope of each repaired op alone, or the whole gradient of
    the loss (the fallback): either one trains bit-identically."""
    import graphfix.patch.funcgrad as funcgrad
    from graphfix.patch.gradients import FixError

    def unavailable(*args, **kwargs):
        raise FixError("strategy disabled by the test")

    # disable the other strategy (the local one failing falls back to the whole gradient)
    if strategy == "local":
        monkeypatch.setattr(funcgrad, "regenerate", unavailable)
    else:
        monkeypatch.setattr(funcgrad, "regenerate_local", unavailable)
    case = cached(name)
    original = model(case, "graph_def")
    fixed, report = graphfix.rewrite(original)
    assert report.findings and all(f.fixed for f in report.findings), report.findings
    result = graphfix.verify(original, fixed, trials=1)
    assert result.ok and result.bit_identical and result.triggered, result.render()


def test_emptiness_flows_into_the_branch():
    """The selection is made outside the cond and passed in: the mean inside
    the branch is found through the call boundary, repaired and trained."""
    from tests.corpus import v2flow

    g = tf.Graph()
    with g.as_default(), v2flow.control_flow_v2():
        x = tf.compat.v1.placeholder(tf.float32, [6, 4], name="x")
        labels = tf.compat.v1.placeholder(tf.float32, [6], name="labels")
        use_aux = tf.compat.v1.placeholder_with_default(True, [], name="use_aux")
        w = tf.compat.v1.get_variable("w", [4, 1], initializer=tf.compat.v1.glorot_uniform_initializer(seed=5),
                                      use_resource=False)
        per = tf.reshape(tf.matmul(x, w), [6])
        positive = tf.boolean_mask(per, labels > 0)
        aux = tf.cond(use_aux, lambda: tf.reduce_mean(positive), lambda: tf.constant(0.0))
        loss = tf.add(tf.reduce_mean(tf.square(per)), aux, name="loss")
        tf.compat.v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, name="train")
    original = Model(kind="graph_def", text=False, graph_def=g.as_graph_def())
    assert [f.code for f in graphfix.check(original).findings] == ["GF001"]
    fixed, report = graphfix.rewrite(original)
    assert [(f.code, f.fixed) for f in report.findings] == [("GF001", True)], report.findings
    result = graphfix.verify(original, fixed, trials=2)
    assert result.ok and result.bit_identical and result.triggered, result.render()


def _v2_check(build):
    from tests.corpus.v2flow import control_flow_v2

    g = tf.Graph()
    with g.as_default(), control_flow_v2():
        build()
    gd = g.as_graph_def()
    return [(f.code, f.node.split("/")[0]) for f in graphfix.check(Model(kind="graph_def", text=False,
                                                                          graph_def=gd)).findings]


def test_values_cross_the_call_boundary():
    """An argument has, inside the branch, the value the call site passes it,
    refined by the cond's predicate: a count the predicate shows positive is
    no zero denominator, a mask sum passed in still is one."""
    def guarded():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        n = tf.compat.v1.placeholder(tf.int32, [], name="n")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.compat.v1.ones_initializer())
        total = tf.reduce_sum(x * w)
        term = tf.cond(n > 0, lambda: total / tf.cast(n, tf.float32), lambda: tf.constant(0.0))
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.identity(term, name="loss"), name="train")

    def unguarded():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        m = tf.compat.v1.placeholder(tf.bool, [4], name="m")
        flag = tf.compat.v1.placeholder_with_default(True, [], name="flag")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.compat.v1.ones_initializer())
        mask = tf.cast(m, tf.float32)
        term = tf.cond(flag, lambda: tf.reduce_sum(x * w * mask) / tf.reduce_sum(mask), lambda: tf.constant(0.0))
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.identity(term, name="loss"), name="train")

    assert _v2_check(guarded) == []
    found = _v2_check(unguarded)
    assert [c for c, _ in found] == ["GF002"] and found[0][1].startswith("cond_true"), found


def test_values_flow_back_from_the_body_to_the_ops_outputs():
    """An If's outputs have the values its branches compute: a ReLU made in a
    branch still reaches 0 for the sqrt after the cond, and a sum of
    max-shifted exps made in a branch is still >= 1 for the division after it."""
    def relu_in_branch():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        flag = tf.compat.v1.placeholder_with_default(True, [], name="flag")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.compat.v1.ones_initializer())
        d = tf.cond(flag, lambda: tf.nn.relu(x * w), lambda: tf.ones_like(x))
        loss = tf.reduce_sum(tf.sqrt(d, name="root"), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")

    def softmax_sum_in_branch():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        flag = tf.compat.v1.placeholder_with_default(True, [], name="flag")
        w = tf.compat.v1.get_variable("w", [], initializer=tf.compat.v1.ones_initializer())
        z = x * w
        s = tf.cond(flag, lambda: tf.reduce_sum(tf.exp(z - tf.reduce_max(z))), lambda: tf.constant(1.0))
        loss = tf.identity(tf.reduce_sum(tf.exp(z - tf.reduce_max(z)) / s), name="loss")
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")

    assert _v2_check(relu_in_branch) == [("GF004", "root")]
    assert _v2_check(softmax_sum_in_branch) == []
