"""Recall on DEBAR's first benchmark set: the 9 published buggy architectures.

DEBAR (ESEC/FSE 2020) evaluated on 8 numerical bugs from the TensorFlow
program-bug study (ForeverZyh/TensorFlow-Program-Bugs, "IPS" = NaN/inf
bugs) and TensorFuzz's NaN example.  Their computation graphs are shared
through a download link, not a git repository, so they cannot be fetched
here.  This script rebuilds each bug's loss from the buggy source lines —
the same ops in the same order, in TF1 graph mode — on a small dense body
(the conv/LSTM bodies do not change the hazard), with the program's own
optimizer, and runs the current ``graphfix.check`` on it.

    python tests/realworld/rebuild_debar.py [--json]

For each bug it prints the node(s) the published fix changed and whether
graphfix reports them (with which code).  Results go into README.md's recall
table; this is a measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))


def _body(tf, classes, act=None):
    x = tf.compat.v1.placeholder(tf.float32, [None, 16], name="x")
    w1 = tf.compat.v1.get_variable("w1", [16, 32])
    h = tf.nn.relu(tf.matmul(x, w1))
    w2 = tf.compat.v1.get_variable("w2", [32, classes])
    b2 = tf.compat.v1.get_variable("b2", [classes], initializer=tf.compat.v1.zeros_initializer())
    z = tf.matmul(h, w2) + b2
    return z if act is None else act(z)


def _labels(tf, classes):
    return tf.compat.v1.placeholder(tf.float32, [None, classes], name="y")


def _softmax_xent(tf, opt):
    """-reduce_sum(y * log(softmax(z))) (the TF tutorial's MNIST loss)."""
    def build():
        p = _body(tf, 10, tf.nn.softmax)
        y = _labels(tf, 10)
        log = tf.math.log(p, name="bug_log")
        loss = -tf.reduce_sum(y * log)
        opt(loss)
        return ["bug_log"]
    return build


def _bce(tf, linear: bool):
    """-(y * log(p) + (1 - y) * log(1 - p)) with p = sigmoid(z), or p = z (no sigmoid) when linear."""
    def build():
        p = _body(tf, 8, None if linear else tf.nn.sigmoid)
        y = _labels(tf, 8)
        a = tf.math.log(p, name="bug_log")
        b = tf.math.log(1 - p, name="bug_log_1m")
        loss = tf.reduce_mean(-(y * a + (1 - y) * b)) if not linear else \
            tf.reduce_mean(tf.reduce_sum(-y * a - (1 - y) * b, 1))
        tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(loss)
        return ["bug_log", "bug_log_1m"]
    return build


def _tensorfuzz(tf):
    """TensorFuzz's nan_model: exp(z) / sum(exp(z)), then -sum(y * log(p))."""
    def build():
        z = _body(tf, 10)
        y = _labels(tf, 10)
        e = tf.exp(z, name="bug_exp")
        p = tf.math.truediv(e, tf.reduce_sum(tf.exp(z, name="bug_exp_1"), axis=1, keepdims=True), name="bug_div")
        loss = tf.reduce_mean(-tf.reduce_sum(y * tf.math.log(p, name="bug_log"), axis=1))
        tf.compat.v1.train.AdamOptimizer().minimize(loss)
        return ["bug_exp", "bug_exp_1", "bug_div", "bug_log"]
    return build


def cases(tf):
    gd = lambda lr: (lambda loss: tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss))  # noqa: E731
    adam = lambda loss: tf.compat.v1.train.AdamOptimizer(1e-4).minimize(loss)  # noqa: E731
    return [
        ("Github-IPS-1", "spatial transformer: -sum(y * log(softmax(z)))", _softmax_xent(tf, adam)),
        ("Github-IPS-6", "stacked autoencoder: y*log(p) + (1-y)*log(1-p), p = sigmoid", _bce(tf, False)),
        ("Github-IPS-9", "logistic regression: -sum(y * log(softmax(z)))", _softmax_xent(tf, gd(0.01))),
        ("StackOverflow-IPS-1", "MNIST CNN: -sum(y * log(softmax(z)))", _softmax_xent(tf, adam)),
        ("StackOverflow-IPS-2", "MNIST CNN: -sum(y * log(softmax(z)))", _softmax_xent(tf, adam)),
        ("StackOverflow-IPS-6", "MNIST CNN: -sum(y * log(softmax(z)))", _softmax_xent(tf, adam)),
        ("StackOverflow-IPS-7", "MLP: -y*log(z) - (1-y)*log(1-z) on a linear output z (no sigmoid)", _bce(tf, True)),
        ("StackOverflow-IPS-14", "MNIST: -sum(y * log(softmax(z))) diverging with learning rate 0.01",
         _softmax_xent(tf, gd(0.01))),
        ("TensorFuzz", "nan_model: exp(z) / sum(exp(z)) softmax, -sum(y * log(p))", _tensorfuzz(tf)),
    ]


def measure():
    import graphfix
    from graphfix.core.tfimport import tf as load_tf

    tf = load_tf()
    tf.compat.v1.disable_eager_execution()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, what, build in cases(tf):
            g = tf.Graph()
            with g.as_default():
                bug_nodes = build()
            path = os.path.join(tmp, name + ".pb")
            with open(path, "wb") as f:
                f.write(g.as_graph_def().SerializeToString())
            report = graphfix.check(graphfix.load(path))
            by_node = {}
            for finding in report.findings:
                by_node.setdefault(finding.node, []).append(finding.code)
            for node in bug_nodes:
                rows.append({"bug": name, "what": what, "node": node, "found": node in by_node,
                             "codes": by_node.get(node, []),
                             "other": sorted(f"{n}:{','.join(c)}" for n, c in by_node.items() if n not in bug_nodes)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = measure()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['bug']:22} {r['node']:11} {'found ' + '/'.join(r['codes']) if r['found'] else 'MISSED':14} "
                  f"{r['what']}{'  (also: ' + ', '.join(r['other']) + ')' if r['other'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
