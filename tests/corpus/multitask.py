"""GF001: multi-task models that route rows to per-task heads with
``tf.dynamic_partition`` and average each task's loss over its own rows.

A batch without any row of some task makes that partition empty; its mean is
0/0 = NaN and so is the summed loss.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Built, dense, placeholder, register

BATCH = 8
N_FEATURES = 6
HIDDEN = 12


@register("multitask_dynamic_partition_adam", ("GF001",))
def multitask_dynamic_partition_adam():
    """Three regression tasks share a trunk; loss = sum of per-task MSE means."""
    n_tasks = 3
    x = placeholder("features", [BATCH, N_FEATURES])
    task = placeholder("task_id", [BATCH], tf.int32)
    y = placeholder("targets", [BATCH])

    shared = dense(x, HIDDEN, "shared", activation=tf.nn.relu)
    rows = tf.dynamic_partition(shared, task, n_tasks, name="rows_by_task")
    targets = tf.dynamic_partition(y, task, n_tasks, name="targets_by_task")
    task_losses = []
    with tf.name_scope("loss"):
        for k in range(n_tasks):
            pred = tf.squeeze(dense(rows[k], 1, f"task{k}_head"), axis=1)
            task_losses.append(tf.reduce_mean(tf.square(pred - targets[k]), name=f"task{k}_mse"))
        total = tf.add_n(task_losses, name="total")
    train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(total, name="train")

    rs = np.random.RandomState(21)
    normal = {
        "inputs/features:0": rs.randn(BATCH, N_FEATURES).astype(np.float32),
        "inputs/task_id:0": np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype=np.int32),
        "inputs/targets:0": rs.randn(BATCH).astype(np.float32),
    }
    trigger = dict(normal)
    trigger["inputs/task_id:0"] = np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=np.int32)  # no task-2 row
    desc = """Multi-task regression: shared ReLU trunk, rows routed with
    dynamic_partition(task_id, 3) to three linear heads, loss = sum over tasks
    of reduce_mean(square(err)) of that task's partition; Adam, resource
    variables.  Trigger: the batch has no row of task 2, so partition 2 is
    empty and its mean is NaN."""
    return Built(total, train, normal, trigger, desc)


@register("multitask_partition_classification_momentum", ("GF001",))
def multitask_partition_classification_momentum():
    """Two classification tasks (different label sets) selected per row."""
    x = placeholder("features", [BATCH, N_FEATURES])
    task = placeholder("task_id", [BATCH], tf.int32)
    labels = placeholder("labels", [BATCH], tf.int32)

    shared = dense(x, HIDDEN, "shared", activation=tf.nn.tanh, use_resource=False)
    rows = tf.dynamic_partition(shared, task, 2, name="rows_by_task")
    task_labels = tf.dynamic_partition(labels, task, 2, name="labels_by_task")
    with tf.name_scope("loss"):
        logits_a = dense(rows[0], 3, "sentiment_head", use_resource=False)
        logits_b = dense(rows[1], 4, "topic_head", use_resource=False)
        loss_a = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=task_labels[0], logits=logits_a),
            name="sentiment_xent",
        )
        loss_b = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=task_labels[1], logits=logits_b),
            name="topic_xent",
        )
        total = tf.add(loss_a, 0.5 * loss_b, name="total")
    train = tf.compat.v1.train.MomentumOptimizer(0.05, 0.9).minimize(total, name="train")

    rs = np.random.RandomState(22)
    normal = {
        "inputs/features:0": rs.randn(BATCH, N_FEATURES).astype(np.float32),
        "inputs/task_id:0": np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=np.int32),
        "inputs/labels:0": np.array([2, 3, 0, 1, 0, 2, 1, 1], dtype=np.int32),
    }
    trigger = dict(normal)
    trigger["inputs/task_id:0"] = np.zeros(BATCH, dtype=np.int32)  # only sentiment rows
    trigger["inputs/labels:0"] = normal["inputs/labels:0"] % 3  # valid sentiment labels
    desc = """Two classification tasks on a shared tanh trunk, rows split with
    dynamic_partition(task_id, 2); each head's sparse softmax CE is averaged
    over its partition (the CE op itself is safe); Momentum, ref variables.
    Trigger: all rows belong to task 0, so the topic partition is empty and
    its mean is NaN."""
    return Built(total, train, normal, trigger, desc)
