"""The core: what every other layer builds on, importing nothing else of
graphfix — the loaded model (:mod:`.model`), reading and writing it
(:mod:`.io`), the networkx IR (:mod:`.ir`), errors, :class:`.findings.Finding`,
op sets, the version, and the one lazy TensorFlow import (:mod:`.tfimport`)."""
