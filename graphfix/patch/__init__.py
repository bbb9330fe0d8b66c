"""Editing the graph with TensorFlow's help: scratch graphs that build a
guard (:mod:`.scratch`), patching the gradient subgraph locally
(:mod:`.gradients`), regenerating it where it cannot be patched (v1 while
loops, TF2 functions: :mod:`.regenerate`, :mod:`.funcgrad`), and the one entry
point that picks between them (:mod:`.region`)."""
