"""Importing TensorFlow cheaply.

``import tensorflow`` costs about two seconds.  Parsing and writing graphs only
needs TensorFlow's generated protobuf modules, which are plain Python, so
:func:`protos` loads just those without running ``tensorflow/__init__.py``.
:func:`tf` imports the full framework, for the rewrite steps that build and
differentiate ops, and :func:`module` one of TensorFlow's internal modules
(``tensorflow.python.framework.op_def_registry`` …) after it.  This module is
the only place in graphfix that imports TensorFlow, and the only one that
imports anything lazily.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
import types

from graphfix.core.errors import GraphfixError

_PROTO_MODULES = (
    "tensorflow.core.framework.graph_pb2",
    "tensorflow.core.framework.node_def_pb2",
    "tensorflow.core.framework.attr_value_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.framework.op_def_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.saved_model_pb2",
    "tensorflow.core.protobuf.control_flow_pb2",
    "tensorflow.core.framework.variable_pb2",
)


class _Protos(types.SimpleNamespace):
    pass


_protos: _Protos | None = None


def protos() -> _Protos:
    """TensorFlow's protobuf message modules, without importing TensorFlow."""
    global _protos
    if _protos is not None:
        return _protos
    stub = None
    if "tensorflow" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            raise GraphfixError("TensorFlow is not installed (pip install tensorflow-cpu)")
        stub = types.ModuleType("tensorflow")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["tensorflow"] = stub
    try:
        mods = {name.rsplit(".", 1)[1]: importlib.import_module(name) for name in _PROTO_MODULES}
    finally:
        if stub is not None and sys.modules.get("tensorflow") is stub:
            del sys.modules["tensorflow"]
    _protos = _Protos(**mods)
    return _protos


_tf = None
import_ms = 0.0  # how long this process spent in ``import tensorflow`` (graphfix reports it as its own timing)
on_import = None  # called with no arguments just before TensorFlow is imported (the CLI's spinner says so)


def tf():
    """The full ``tensorflow`` module, in graph mode with v1 control flow available."""
    global _tf, import_ms
    if _tf is None:
        if on_import is not None:
            on_import()
        t0 = time.perf_counter()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # TensorFlow's C++ start-up chatter goes straight to fd 2; keep our
        # stderr to the one-line contract.
        saved = devnull = None
        try:
            saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
        except OSError:
            saved = None
        try:
            import tensorflow  # noqa: PLC0415  (deliberately lazy)
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)

        import_ms += (time.perf_counter() - t0) * 1000
        core = sys.modules.get("tensorflow.core")
        if core is not None and not hasattr(tensorflow, "core"):
            tensorflow.core = core
        _tf = tensorflow
    return _tf


def module(name: str) -> types.ModuleType:
    """TensorFlow's internal module ``name`` (``tensorflow.python.…``), after
    importing the framework itself."""
    tf()
    return importlib.import_module(name)
