"""Direct calls of each library (no convcert code): ``express(g)`` says whether the library
can state geometry ``g`` at all; ``run(g, arrays)`` returns the library's answer as NumPy.

Geometry ``g`` (a dict): op, x/w shapes, stride, padding ((top, bottom), (left, right)),
dilation, groups, kernel, ceil, cip (count_include_pad), pad_mode ("valid", "same" or
"explicit": how the padding was drawn).
"""

from __future__ import annotations

import os

import numpy as np

FORWARD = ("conv2d", "max_pool2d", "avg_pool2d")
BACKWARD = ("conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward")


# -- onnx.reference ----------------------------------------------------------------
class Onnx:
    name = "onnx_reference"
    dtypes = ("float64", "float32")
    ops = FORWARD

    def __init__(self):
        import onnx
        from onnx import TensorProto, helper
        from onnx.reference import ReferenceEvaluator

        self.version = onnx.__version__
        self.h, self.TP, self.RE = helper, TensorProto, ReferenceEvaluator

    def express(self, g):
        return g["op"] in self.ops

    def _run(self, op, inputs, **attrs):
        h = self.h
        elem = {np.dtype("float64"): self.TP.DOUBLE, np.dtype("float32"): self.TP.FLOAT}[inputs[0][1].dtype]
        node = h.make_node(op, [k for k, _ in inputs], ["y"], **attrs)
        graph = h.make_graph(
            [node],
            "g",
            [h.make_tensor_value_info(k, elem, list(v.shape)) for k, v in inputs],
            [h.make_tensor_value_info("y", elem, None)],
        )
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)])
        return np.asarray(self.RE(model).run(None, dict(inputs))[0])

    def run(self, g, a):
        (t, b), (l, r) = g["padding"]
        common = dict(strides=list(g["stride"]), pads=[t, l, b, r], dilations=list(g["dilation"]))
        if g["op"] == "conv2d":
            ins = [("x", a["x"]), ("w", a["w"])] + ([("b", a["b"])] if a.get("b") is not None else [])
            return self._run("Conv", ins, kernel_shape=list(a["w"].shape[2:]), group=g["groups"], **common)
        extra = {"count_include_pad": int(g["cip"])} if g["op"] == "avg_pool2d" else {}
        op = "MaxPool" if g["op"] == "max_pool2d" else "AveragePool"
        return self._run(
            op, [("x", a["x"])], kernel_shape=list(g["kernel"]), ceil_mode=int(g["ceil"]), **extra, **common
        )


# -- Keras 3 (JAX backend) -----------------------------------------------------------
class Keras:
    name = "keras3"
    dtypes = ("float64", "float32")
    ops = FORWARD + BACKWARD

    def __init__(self):
        os.environ.setdefault("KERAS_BACKEND", "jax")
        os.environ.setdefault("JAX_ENABLE_X64", "1")
        import jax
        import keras

        self.version = keras.__version__
        self.jax, self.keras = jax, keras

    def express(self, g):
        """Keras has only "valid" and "same" padding, no pooling dilation, no ceil mode; its
        average pooling never counts the padding."""
        if g["pad_mode"] == "explicit" and any(g["padding"][0] + g["padding"][1]):
            return False
        if g["op"].startswith(("max", "avg")):
            if g["ceil"] or g["dilation"] != (1, 1):
                return False
            if g["op"].startswith("avg") and g["cip"] and any(g["padding"][0] + g["padding"][1]):
                return False
        return True

    def _forward(self, g):
        ops = self.keras.ops
        mode = "valid" if not any(g["padding"][0] + g["padding"][1]) else "same"
        if g["op"].startswith("conv"):

            def f(x, w):
                return ops.conv(
                    x,
                    ops.transpose(w, (2, 3, 1, 0)),
                    strides=g["stride"],
                    padding=mode,
                    data_format="channels_first",
                    dilation_rate=g["dilation"],
                )

            return f
        pool = ops.max_pool if g["op"].startswith("max") else ops.average_pool
        return lambda x: pool(x, g["kernel"], strides=g["stride"], padding=mode, data_format="channels_first")

    def run(self, g, a):
        jnp = self.jax.numpy
        f = self._forward(g)
        if g["op"] == "conv2d":
            y = f(jnp.asarray(a["x"]), jnp.asarray(a["w"]))
            if a.get("b") is not None:
                y = y + jnp.asarray(a["b"])[None, :, None, None]
            return np.asarray(y)
        if g["op"] in ("max_pool2d", "avg_pool2d"):
            return np.asarray(f(jnp.asarray(a["x"])))
        if g["op"] == "conv2d_backward":
            y, vjp = self.jax.vjp(f, jnp.asarray(a["x"]), jnp.asarray(a["w"]))
            dx, dw = vjp(jnp.asarray(a["dy"]))
            return np.asarray(dx), np.asarray(dw), np.asarray(a["dy"]).sum(axis=(0, 2, 3))
        y, vjp = self.jax.vjp(f, jnp.asarray(a["x"]))
        return np.asarray(vjp(jnp.asarray(a["dy"]))[0])


# -- tinygrad ----------------------------------------------------------------------
class Tinygrad:
    name = "tinygrad"
    dtypes = ("float64", "float32")
    ops = FORWARD + BACKWARD

    def __init__(self):
        import shutil

        dev = os.environ.get("TINYGRAD_DEVICE") or (
            "CPU" if shutil.which(os.environ.get("CC", "clang")) else "PYTHON"
        )
        os.environ.setdefault("DEV", dev)
        from importlib.metadata import version

        from tinygrad import Tensor, dtypes

        self.version = version("tinygrad")
        self.T, self.dt, self.dev = Tensor, dtypes, dev

    def express(self, g):
        return True

    def _t(self, a):
        return self.T(
            np.ascontiguousarray(a),
            dtype={np.dtype("float64"): self.dt.float64, np.dtype("float32"): self.dt.float32}[a.dtype],
            device=self.dev,
        )

    def run(self, g, a):
        (t, b), (l, r) = g["padding"]
        pad = (l, r, t, b)
        x = self._t(a["x"])
        if g["op"].startswith("conv"):
            w = self._t(a["w"])
            bias = self._t(a["b"]) if a.get("b") is not None else None
            if g["op"] == "conv2d_backward":
                bias = self.T.zeros(a["w"].shape[0], dtype=x.dtype, device=self.dev)
            y = x.conv2d(w, bias, groups=g["groups"], stride=g["stride"], dilation=g["dilation"], padding=pad)
            if g["op"] == "conv2d":
                return y.numpy()
            return tuple(t_.numpy() for t_ in y.gradient(x, w, bias, gradient=self._t(a["dy"])))
        if g["op"].startswith("max"):
            y = x.max_pool2d(g["kernel"], g["stride"], g["dilation"], pad, ceil_mode=g["ceil"])
        else:
            y = x.avg_pool2d(
                g["kernel"], g["stride"], g["dilation"], pad, ceil_mode=g["ceil"], count_include_pad=g["cip"]
            )
        if not g["op"].endswith("backward"):
            return y.numpy()
        return y.gradient(x, gradient=self._t(a["dy"]))[0].numpy()


LIBS = {"onnx_reference": Onnx, "keras3": Keras, "tinygrad": Tinygrad}
