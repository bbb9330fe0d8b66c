"""Imported once in the worker fork server (graphfix.cli.pool), so that every
worker forked from it starts with graphfix, its analyses, its rules and
TensorFlow's protobuf message modules already loaded.  None of these start
threads, so forking after them is safe; TensorFlow itself is not imported
here (graphfix.cli.results.init_worker imports it per worker, for rewrite)."""
import graphfix.api  # noqa: F401
import graphfix.cli.results  # noqa: F401
import rewrites  # noqa: F401
from graphfix.core.tfimport import protos

protos()
