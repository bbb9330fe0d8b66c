"""GF011 log-of-picked-probability (opt-in)."""
from __future__ import annotations

from rewrites.log_probability import LogProbability


class LogPickedProbability(LogProbability):
    """GF011 log-of-picked-probability

    What it does:
        Finds ``log`` of one softmax probability per example picked by an
        index that changes per batch: ``log(gather(softmax(z), a))``,
        ``log(reduce_sum(softmax(z) * one_hot(a), 1))``, or the same sum
        against a one-hot fed as floats.  Opt-in: run it with
        ``--select GF011``.

    Why is this bad:
        If the picked class's probability underflows to exactly 0 (its logit
        ~104 below the largest, in float32), the log is -inf and the
        gradient NaN, as for GF005.  Whether that can happen depends on where
        the index comes from, which the graph does not say.  In a
        policy-gradient graph it is the action sampled from this same
        softmax, with the same weights, so its probability is not 0 and the
        term is safe: on 335 real graph files every such log was a
        REINFORCE or actor-critic policy (0 of 3 findings true), which is why
        the rule is not in the default set.  With a supervised label, or
        actions replayed from an old policy, it is GF005's hazard.

    Example:
        logp = tf.math.log(tf.reduce_sum(tf.nn.softmax(logits) * tf.one_hot(labels, n), axis=1))

    Fix:
        The log-domain form, as GF005: ``log_softmax`` gathered or one-hot
        summed the same way; where the pick has no such form (a one-hot fed
        as floats), the unsafe clamp ``log(maximum(p, tiny))`` with
        ``--unsafe-fixes``.

    Fix safety:
        Safe for the log-domain forms (equal within float rounding, finite
        everywhere); the clamp is unsafe (it changes values below ``tiny``
        and zeroes their gradient).
    """

    code = "GF011"
    name = "log-of-picked-probability"
    summary = "log of a softmax probability picked by a fed or sampled index (opt-in: safe on-policy)"
    default = False  # opt-in under issue 11's noise policy (see the docstring)
    picked = True
