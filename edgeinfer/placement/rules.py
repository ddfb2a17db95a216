"""DLA layer rules as ONE data table: which ONNX nodes can run on the DLA, and why not.

Each :class:`DlaRule` row names the ONNX ops it applies to, the DLA generations (1 = Xavier
NVDLA v1, 2 = Orin NVDLA v2) where it holds, a check that returns the reason
the node must fall back to the GPU (or None), and the public source it comes from:
``NvInfer.h <ver>`` is github.com/NVIDIA/TensorRT ``include/NvInfer.h`` on ``release/<ver>`` (the
"If executing this layer on DLA" comments, which the TensorRT docs' "DLA Supported Layers and
Restrictions" page repeats); ``DLA-SW`` is github.com/NVIDIA/Deep-Learning-Accelerator-SW
``operators/README.md``; ``onnx-tensorrt`` is github.com/onnx/onnx-tensorrt (how TensorRT's ONNX
parser maps an ONNX node to a TensorRT layer).

Example:
    >>> [r.rule_id for r in RULES if "Conv" in r.ops][:3]
    ['conv-2d', 'conv-kernel', 'conv-stride']
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .graph import NodeView

Check = Callable[[NodeView], "str | None"]
MAX_DIM = 8192

# ONNX ops with a native DLA implementation through TensorRT 8.6/10.3 (DLA-SW "Native" column).
# Identity/Dropout are removed by TensorRT; Squeeze/Unsqueeze/Flatten map to Shuffle like Reshape.
NATIVE_OPS = frozenset({
    "Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip",
    "Add", "Sub", "Mul", "Max", "Min", "Sum", "MaxPool", "AveragePool", "Concat", "Slice", "Split",
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Resize", "Upsample", "Softmax", "LRN",
    "Gemm", "MatMul", "Abs", "Identity", "Dropout",
})


@dataclass(frozen=True)
class DlaRule:
    """One row of the DLA rule table."""

    rule_id: str
    ops: tuple[str, ...]  # ONNX op types; ("*",) = every node
    check: Check  # returns why the node cannot run on DLA, or None
    source: str
    generations: tuple[int, ...] = (1, 2)

    def applies(self, op: str, *, generation: int) -> bool:
        return (self.ops == ("*",) or op in self.ops) and generation in self.generations


# --- small helpers the checks share -------------------------------------------------------------

def _rank(shape) -> int | None:
    return None if shape is None else len(shape)


def _in_range(values, lo: int, hi: int) -> bool:
    return all(lo <= int(v) <= hi for v in values)


def _kernel(n: NodeView) -> list[int]:
    if "kernel_shape" in n.attrs:
        return list(n.attrs["kernel_shape"])
    w = n.input_shapes[1] if len(n.input_shapes) > 1 else None
    return [d for d in (w or ())[2:]]


def _pads(n: NodeView) -> list[int]:
    return list(n.attrs.get("pads", [0] * (2 * len(_kernel(n)))))


def _axis(n: NodeView, default: int = 0) -> int | None:
    rank = _rank(n.input_shapes[0] if n.input_shapes else None)
    axis = int(n.attrs.get("axis", default))
    return None if rank is None else axis % rank


def _msg(cond: bool, text: str) -> str | None:
    return text if cond else None


# --- checks ----------------------------------------------------------------------------------

def _not_native(n: NodeView) -> str | None:
    return _msg(n.op not in NATIVE_OPS, f"{n.op} has no native DLA implementation")


def _big_dims(n: NodeView) -> str | None:
    for shape in (*n.input_shapes[:1], *n.output_shapes):
        if shape and any(isinstance(d, int) and d > MAX_DIM for d in shape[1:]):
            return f"a non-batch dimension of {list(shape)} exceeds {MAX_DIM}"
    return None


def _conv_2d(n: NodeView) -> str | None:
    return _msg(len(_kernel(n)) != 2, f"{len(_kernel(n))}-D convolution (DLA runs 2-D only)")


def _conv_kernel(n: NodeView) -> str | None:
    k = _kernel(n)
    return _msg(not _in_range(k, 1, 32), f"kernel {k} outside [1,32]")


def _conv_stride(n: NodeView) -> str | None:
    s = list(n.attrs.get("strides", [1, 1]))
    return _msg(not _in_range(s, 1, 8), f"stride {s} outside [1,8]")


def _conv_padding(n: NodeView) -> str | None:
    k, p = _kernel(n), _pads(n)
    bad = not _in_range(p, 0, 31) or any(pad >= k[i % len(k)] for i, pad in enumerate(p) if k)
    return _msg(bad, f"padding {p} not in [0,31] or not smaller than kernel {k}")


def _conv_channels(n: NodeView) -> str | None:
    out = n.output_shapes[0]
    groups = int(n.attrs.get("group", 1))
    maps = out[1] if out and len(out) > 1 and isinstance(out[1], int) else 1
    return _msg(maps > MAX_DIM or groups > MAX_DIM, f"output maps {maps} / groups {groups} above {MAX_DIM}")


def _deconv_shape(n: NodeView) -> str | None:
    k = _kernel(n)
    ok_2d = len(k) == 2 and _in_range(k, 1, 32)
    ok_1d = len(k) == 2 and sorted(k)[0] == 1 and max(k) in (64, 96, 128)
    return _msg(not (ok_2d or ok_1d), f"deconvolution kernel {k} is neither 2-D in [1,32] nor 1x64/96/128")


def _deconv_pad_groups(n: NodeView) -> str | None:
    pads, groups = _pads(n), int(n.attrs.get("group", 1))
    return _msg(any(pads) or groups != 1, f"deconvolution needs padding 0 and 1 group (pads {pads}, groups {groups})")


def _deconv_stride(n: NodeView) -> str | None:
    # Deconvolution strides are NOT Conv's [1,8]: [1,32], or 64/96/128 in one dimension and 1 in the other.
    s = list(n.attrs.get("strides", [1, 1]))
    ok_2d = len(s) == 2 and _in_range(s, 1, 32)
    ok_1d = len(s) == 2 and min(s) == 1 and max(s) in (64, 96, 128)
    return _msg(not (ok_2d or ok_1d), f"deconvolution stride {s} is neither 2-D in [1,32] nor 1x64/96/128")


def _pool_padding(n: NodeView) -> str | None:
    # Explicit pads only: auto_pad SAME with a DLA-sized window (<= 8, checked by pool-window) pads < 8 per side.
    pads = list(n.attrs.get("pads", []))
    return _msg(not _in_range(pads, 0, 7), f"pooling padding {pads} outside [0,7]")


def _avgpool_exclusive(n: NodeView) -> str | None:
    # TensorRT's ONNX parser sets averageCountExcludesPadding = !count_include_pad (default 0 -> exclusive);
    # Xavier's DLA runs only inclusive padding, so anything but count_include_pad=1 leaves the DLA.
    include = int(n.attrs.get("count_include_pad", 0))
    return _msg(include != 1, "AveragePool with count_include_pad=0 (exclusive padding): Xavier's DLA averages "
                              "with inclusive padding only (set count_include_pad=1)")


def _resize_by_sizes(n: NodeView) -> str | None:
    # onnx-tensorrt: `sizes` becomes setOutputDimensions() (constant) or a shape input (dynamic resize);
    # NvInfer.h: "If executing this layer on DLA, setOutputDimensions() is not supported".
    has_sizes = n.op == "Resize" and len(n.inputs) > 3 and bool(n.inputs[3])
    return _msg(has_sizes, "resize given by `sizes` (TensorRT makes it an output-dimension / dynamic resize, "
                           "which DLA does not run; export with `scales`)")


def _pool_window(n: NodeView) -> str | None:
    k = list(n.attrs.get("kernel_shape", []))
    s = list(n.attrs.get("strides", [1] * len(k)))
    if len(k) != 2:
        return f"{len(k)}-D pooling (DLA runs 2-D only)"
    return _msg(not (_in_range(k, 1, 8) and _in_range(s, 1, 16)), f"pooling window {k} / stride {s} outside [1,8] / [1,16]")


def _concat_axis(n: NodeView) -> str | None:
    rank = _rank(n.output_shapes[0] if n.output_shapes else None)
    axis = int(n.attrs.get("axis", 0))
    if rank is None or rank < 3 or axis % rank != rank - 3:
        return f"concatenation on axis {axis} of a {rank}-D tensor (DLA concatenates along C, 3rd-from-last, only)"
    return _msg(len([i for i in n.inputs if i]) < 2, "concatenation with fewer than 2 inputs")


def _slice_rules(n: NodeView) -> str | None:
    rank = _rank(n.input_shapes[0])
    if rank != 4:
        return f"slice of a {rank}-D tensor (DLA slices 4-D tensors only)"
    if any(not n.is_const(i) for i in range(1, len(n.inputs)) if n.inputs[i]):
        return "slice with runtime start/end (DLA needs static slices)"
    steps = n.const(4) if len(n.inputs) > 4 and n.inputs[4] else None
    if steps is not None and any(int(s) != 1 for s in steps.ravel()):
        return f"slice step {steps.ravel().tolist()} (DLA needs stride 1)"
    return _msg(_slices_batch(n), "slice on the batch dimension")


def _slices_batch(n: NodeView) -> bool:
    starts, ends = n.const(1), n.const(2)
    axes = n.const(3) if len(n.inputs) > 3 and n.inputs[3] else None
    if axes is None:
        count = len(starts.ravel()) if starts is not None else 0
        axes_list = list(range(count))
    else:
        axes_list = [int(a) % 4 for a in axes.ravel()]
    if 0 not in axes_list:
        return False
    if starts is None or ends is None:
        return True  # static but value unknown here: assume the worst
    i, batch = axes_list.index(0), n.input_shapes[0][0]
    start, end = int(starts.ravel()[i]), int(ends.ravel()[i])
    return start != 0 or (isinstance(batch, int) and min(end, batch) < batch)


def _split_rules(n: NodeView) -> str | None:
    rank, axis = _rank(n.input_shapes[0]), _axis(n)
    if rank != 4:
        return f"split of a {rank}-D tensor (DLA slices 4-D tensors only)"
    return _msg(axis == 0, "split on the batch dimension")


def _reshape_next_to_slice_concat(n: NodeView) -> str | None:
    near = {"Slice", "Split", "Concat"} & set(n.producer_ops + n.consumer_ops)
    return _msg(bool(near), f"reshape directly connected to {'/'.join(sorted(near))} (TensorRT: this DLA version does not support it)")


def _resize_rules(n: NodeView) -> str | None:
    mode = n.attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear"):
        return f"resize mode {mode!r} (DLA: nearest or linear)"
    scales = _resize_scales(n)
    if scales is None:
        return "resize with runtime scales/sizes (DLA needs 4 static scales)"
    if len(scales) != 4 or scales[0] != 1 or scales[1] != 1:
        return f"resize scales {scales} (DLA needs 4 scales with the first two = 1)"
    limit = 32 if mode == "nearest" else 4
    hw = scales[2:]
    if any(s != int(s) or not 1 <= s <= limit for s in hw):
        return f"{mode} resize scales {hw} (DLA needs integer H/W scales in [1,{limit}])"
    return _resize_coords(n, mode)


def _resize_scales(n: NodeView) -> list[float] | None:
    scales = n.const(2) if len(n.inputs) > 2 and n.inputs[2] else None
    if n.op == "Upsample":
        scales = n.const(1)
    if scales is not None and scales.size:
        return [float(s) for s in scales.ravel()]
    return None  # `sizes` is its own rule (resize-sizes): TensorRT never turns it back into scales


def _resize_coords(n: NodeView, mode: str) -> str | None:
    ctm = n.attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest = n.attrs.get("nearest_mode", "round_prefer_floor")
    if mode == "nearest":
        ok = (ctm == "asymmetric" and nearest == "floor") or (
            ctm == "half_pixel" and nearest in ("round_prefer_floor", "round_prefer_ceil"))
    else:
        ok = ctm in ("half_pixel", "pytorch_half_pixel")
    return _msg(not ok, f"{mode} resize with coordinate mode {ctm!r}/{nearest!r} (DLA: asymmetric+floor or half_pixel)")


def _softmax_axis(n: NodeView) -> str | None:
    shape, axis = n.input_shapes[0], _axis(n, default=-1)
    if shape is None or axis is None or len(shape) < 3:
        return "softmax on a tensor of rank < 3 (DLA: channel or spatial axis of an NCHW tensor)"
    rank = len(shape)
    if axis not in (rank - 3, rank - 2, rank - 1) or axis == 0:
        return f"softmax on axis {axis} (DLA: channel or spatial axis)"
    others = [d for i, d in enumerate(shape[1:], 1) if i != axis]
    limit = MAX_DIM if all(d == 1 for d in others) else 1024
    return _msg(isinstance(shape[axis], int) and shape[axis] > limit, f"softmax axis length {shape[axis]} above {limit}")


def _matmul_const(n: NodeView) -> str | None:
    return _msg(not n.is_const(1), f"{n.op} with a runtime second input (DLA maps only constant weights to a 1x1 conv)")


def _lrn_window(n: NodeView) -> str | None:
    size = int(n.attrs.get("size", 0))
    return _msg(size not in (3, 5, 7, 9), f"LRN window {size} not in {{3,5,7,9}}")


def _always(reason: str) -> Check:
    return lambda n: reason


_H = "github.com/NVIDIA/TensorRT include/NvInfer.h"
_DLA_DOC = "TensorRT docs 'DLA Supported Layers and Restrictions'"
_DLA_SW = "github.com/NVIDIA/Deep-Learning-Accelerator-SW operators/README.md"

RULES: tuple[DlaRule, ...] = (
    DlaRule("gather", ("Gather", "GatherElements", "GatherND"), _always("Gather has no DLA implementation"),
            f"{_H} (release/10.3 IGatherLayer: 'No DLA support'); {_DLA_SW}: decompose Gather"),
    DlaRule("global-avg-pool", ("GlobalAveragePool", "ReduceMean"),
            _always("GlobalAveragePool/ReduceMean are not DLA layers (use AveragePool with kernel <= 8)"),
            f"NVIDIA-AI-IOT/jetson_dla_tutorial README; {_DLA_SW} (listed as RFE, not native)"),
    DlaRule("div", ("Div",), _always("elementwise DIV is not supported on DLA up to TensorRT 10.3 (native only from 8.6.12 on DRIVE)"),
            f"{_H} (release/10.3 IElementWiseLayer: DLA supports only kSUM, kPROD, kMAX, kMIN, kSUB); "
            f"ultralytics PR #16449 ('DLA cores do not support DIV'); {_DLA_SW}"),
    DlaRule("qdq", ("QuantizeLinear", "DequantizeLinear"),
            _always("Q/DQ nodes: DLA INT8 on JetPack 5/6 takes scales from a calibration cache, not Q/DQ"),
            "NVIDIA/TensorRT issue #2222; NVIDIA/Model-Optimizer PR #1661 ('DLA still only supports IQ')"),
    DlaRule("leaky-relu-xavier", ("LeakyRelu",), _always("LeakyReLU was rejected by Xavier (NVDLA v1) DLA builds"),
            "marcoslucianops/DeepStream-Yolo issue #27", generations=(1,)),
    DlaRule("native-op", ("*",), _not_native, f"{_DLA_SW} (native list); {_H} layer comments"),
    DlaRule("max-dims", ("*",), _big_dims, f"{_DLA_DOC} (non-batch dimensions <= 8192)"),
    DlaRule("conv-2d", ("Conv",), _conv_2d, f"{_H} (release/10.3 IConvolutionLayer: 2D only)"),
    DlaRule("conv-kernel", ("Conv",), _conv_kernel, f"{_H} (release/10.3 IConvolutionLayer::setKernelSizeNd: [1,32])"),
    DlaRule("conv-stride", ("Conv",), _conv_stride, f"{_H} (release/10.3 IConvolutionLayer::setStrideNd: [1,8])"),
    DlaRule("conv-padding", ("Conv",), _conv_padding,
            f"{_H} (release/10.3 IConvolutionLayer::setPaddingNd: [0,31] and smaller than the kernel)"),
    DlaRule("conv-maps", ("Conv",), _conv_channels, f"{_H} (release/10.3: output maps [1,8192], groups <= 8192)"),
    DlaRule("deconv-kernel", ("ConvTranspose",), _deconv_shape,
            f"{_H} (release/10.3 IDeconvolutionLayer::setKernelSizeNd: [1,32] or 1x64/96/128)"),
    DlaRule("deconv-stride", ("ConvTranspose",), _deconv_stride,
            f"{_H} (release/8.5 and 10.3 IDeconvolutionLayer::setStrideNd: [1,32] or 1x64/96/128, unlike Conv's [1,8])"),
    DlaRule("deconv-pad-groups", ("ConvTranspose",), _deconv_pad_groups,
            f"{_H} (release/10.3 IDeconvolutionLayer: padding 0, nbGroups 1)"),
    DlaRule("pool-window", ("MaxPool", "AveragePool"), _pool_window,
            f"{_H} (release/10.3 IPoolingLayer: window [1,8], stride [1,16])"),
    DlaRule("pool-padding", ("MaxPool", "AveragePool"), _pool_padding,
            f"{_H} (release/8.5 and 10.3 IPoolingLayer::setPaddingNd: 2D padding in [0,7])"),
    DlaRule("avgpool-inclusive-xavier", ("AveragePool",), _avgpool_exclusive,
            f"{_H} (release/8.5 and 8.6 IPoolingLayer::setAverageCountExcludesPadding: 'On Xavier, DLA supports only "
            "inclusive padding'); onnx/onnx-tensorrt importerUtils.cpp (count_include_pad -> excludes padding)",
            generations=(1,)),
    DlaRule("concat-axis", ("Concat",), _concat_axis,
            f"{_H} (release/10.3 IConcatenationLayer::setAxis: third-to-last axis only, >= 2 inputs)"),
    DlaRule("slice", ("Slice",), _slice_rules, f"{_H} (release/10.3 ISliceLayer: 4-D, static, stride 1, not batch)"),
    DlaRule("split", ("Split",), _split_rules, "TensorRT's ONNX parser lowers Split to ISliceLayer: same restrictions"),
    DlaRule("reshape-adjacent", ("Reshape", "Flatten", "Squeeze", "Unsqueeze"), _reshape_next_to_slice_concat,
            "ultralytics issue #18012 (TensorRT: 'DLA does not support reshape layers directly connected to Slice or Concat')"),
    DlaRule("resize-sizes", ("Resize",), _resize_by_sizes,
            f"{_H} (release/10.3 IResizeLayer::setOutputDimensions: not supported on DLA); onnx/onnx-tensorrt "
            "onnxOpImporters.cpp Resize (`sizes` -> setOutputDimensions or a dynamic shape input)"),
    DlaRule("resize", ("Resize", "Upsample"), _resize_rules,
            f"{_H} (release/10.3 IResizeLayer::setScales: 4 scales, first two 1, integer H/W scales)"),
    DlaRule("softmax-xavier", ("Softmax",), _always("Softmax does not run on Xavier's DLA (NVDLA v1)"),
            f"{_H} (release/8.5 and 8.6 ISoftMaxLayer: 'On Xavier, this layer is not supported on DLA')",
            generations=(1,)),
    DlaRule("softmax-axis", ("Softmax",), _softmax_axis,
            f"{_H} (release/10.3 ISoftMaxLayer: channel/spatial axis, <= 8192 or <= 1024)"),
    DlaRule("matmul-const", ("Gemm", "MatMul"), _matmul_const,
            f"{_DLA_SW} (Gemm/MatMul with a constant 2nd input -> 1x1 conv)"),
    DlaRule("lrn-window", ("LRN",), _lrn_window, f"{_H} (release/10.3 ILRNLayer: window 3/5/7/9)"),
)


def first_violation(node: NodeView, *, generation: int) -> tuple[DlaRule, str] | None:
    """The first rule (in table order) that keeps ``node`` off the DLA, with its reason."""
    for rule in RULES:
        if rule.applies(node.op, generation=generation):
            reason = rule.check(node)
            if reason:
                return rule, reason
    return None
