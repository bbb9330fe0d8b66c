"""``graphfix verify``: run the original and the fixed graph side by side in
TensorFlow and check the repair's contract.

- :mod:`~graphfix.verification.feeds` derives normal and triggering feeds;
- :mod:`~graphfix.verification.runner` runs one graph (the one runner
  ``verify`` and the tests use);
- :mod:`~graphfix.verification.compare` compares two runs;
- :mod:`~graphfix.verification.differential` is the ``verify`` command
  itself (:func:`verify`, :class:`VerifyResult`).
"""
