"""A recording STAND-IN for the ``tensorrt`` module, generated from the API table for one version.

It is no substitute for TensorRT and proves nothing about engines, kernels or DLA: it only lets
CPU tests drive edgeinfer's builder through each version's API and check which calls and flags
it makes. What it guarantees, because it is generated from tests/data/trt_api/:

  * it has exactly the table's module names, classes, class members and enum values for that
    version; any other attribute raises AttributeError, as the real module does;
  * classes without ``__init__`` in the table cannot be constructed (TypeError, like pybind11's
    "No constructor defined!"); setting an attribute a class does not list raises AttributeError;
  * every method call and attribute assignment on a TensorRT object is appended to ``trt.calls``.

Behaviour (return values) exists only for the members the builder uses; calling any other listed
member raises StandinGap, so a test fails loudly instead of passing on a silent no-op. The engine
"built" here is a JSON description of the configuration, and the inspector's layer JSON mimics
TensorRT's shape (``{ForeignNode[first...last]}`` for DLA regions). The jetson test tier
(tests/jetson/) is the only check against real TensorRT.

Example:
    >>> trt = make_standin("10.3")
    >>> trt.BuilderFlag.FP16.name, hasattr(trt.BuilderFlag, "STRICT_TYPES")
    ('FP16', False)
    >>> hasattr(make_standin("11.1").BuilderFlag, "FP16")
    False
"""
from __future__ import annotations

import json
import time
import types
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from trt_contract import DATA_DIR, NOT_API, WHEEL_ONLY

FULL_VERSIONS = {"8.5": "8.5.2.2", "8.6": "8.6.2.3", "10.3": "10.3.0.30", "10.16": "10.16.1.11",
                 "11.1": "11.1.0.106", "11.4": "11.4.0.106"}
DLA_OPS = {"Conv", "Relu", "Sigmoid", "Mul", "Add", "Sub", "MaxPool", "AveragePool", "Concat", "Resize",
           "BatchNormalization", "LeakyRelu", "Clip"}


class StandinGap(AssertionError):
    """The builder used a real TensorRT member the stand-in has no behaviour for."""


def _load_raw(version: str) -> Dict[str, Any]:
    if version in WHEEL_ONLY:
        return json.loads((DATA_DIR / "trt_python_api_wheels.json").read_text())[WHEEL_ONLY[version]]
    return json.loads((DATA_DIR / "trt_python_api.json").read_text())[version]


class EnumValue:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnumValue) and (other.enum, other.value) == (self.enum, self.value)

    def __hash__(self) -> int:
        return hash((self.enum, self.value))

    def __repr__(self) -> str:
        return f"{self.enum}.{self.name}"


class EnumNamespace:
    def __init__(self, name: str, members: List[str], extra: List[str]) -> None:
        object.__setattr__(self, "_name", name)
        values = {m: EnumValue(name, m, i) for i, m in enumerate(members)}
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "__members__", dict(values))
        object.__setattr__(self, "_extra", set(extra))

    def __getattr__(self, item: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if item in values:
            return values[item]
        raise AttributeError(f"type object '{object.__getattribute__(self, '_name')}' has no attribute '{item}'")

    def by_value(self, value: int) -> EnumValue:
        return [v for v in object.__getattribute__(self, "_values").values() if v.value == value][0]


class _State:
    """Per-stand-in shared state: the call log and knobs."""

    def __init__(self, version: str, *, dla_cores: int, build_delay: float, build_log: Optional[Path],
                 fail_build: Optional[str] = None) -> None:
        self.version = version
        self.fail_build = fail_build
        self.calls: List[Tuple[str, tuple]] = []
        self.dla_cores = dla_cores
        self.build_delay = build_delay
        self.build_log = build_log
        self.logger: Any = None  # TensorRT keeps ONE logger pointer: the first one given wins


def _keep_first_logger(state: _State, logger: Any) -> Any:
    """Like TensorRT: while a logger is registered, a different one passed later is ignored
    (NVIDIA/TensorRT #1475: 'TensorRT maintains only a single logger pointer')."""
    if state.logger is None:
        state.logger = logger
    return state.logger


def _make_class(name: str, members: List[str], state: _State, behaviours: Dict[str, Callable[..., Any]],
                bases: Tuple[type, ...] = (object,)) -> type:
    allowed = frozenset(members)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if "__init__" not in allowed:
            raise TypeError(f"tensorrt.{name}: No constructor defined!")
        object.__setattr__(self, "_props", {})
        state.calls.append((f"{name}()", args))
        init = behaviours.get("__init__")
        if init is not None:
            init(self, *args)

    def __getattr__(self: Any, item: str) -> Any:  # only reached when normal lookup fails
        if item.startswith("_"):
            raise AttributeError(item)
        if item not in allowed:
            raise AttributeError(f"'tensorrt.{name}' object has no attribute '{item}'")
        props = object.__getattribute__(self, "__dict__").setdefault("_props", {})
        if item in props:
            return props[item]
        if item in behaviours:
            behaviour = behaviours[item]

            def recorded(*args: Any) -> Any:
                state.calls.append((f"{name}.{item}", args))
                return behaviour(self, *args)

            return recorded
        raise StandinGap(f"stand-in has no behaviour for tensorrt.{name}.{item} (add it to trt_standin.py)")

    def __setattr__(self: Any, item: str, value: Any) -> None:
        if type(self).__dict__.get("_standin_generated") and item not in allowed:
            raise AttributeError(f"'tensorrt.{name}' object has no attribute '{item}'")
        if item in allowed:
            state.calls.append((f"{name}.{item}=", (value,)))
            object.__getattribute__(self, "__dict__").setdefault("_props", {})[item] = value
        else:  # a Python subclass (calibrator, logger) keeps its own attributes
            object.__setattr__(self, item, value)

    return type(name, bases, {"__init__": __init__, "__getattr__": __getattr__, "__setattr__": __setattr__,
                              "_standin_generated": True, "_standin_members": allowed})


def make_standin(version: str, *, dla_cores: int = 2, build_delay: float = 0.0,
                 build_log: Optional[Path] = None, fail_build: Optional[str] = None) -> types.ModuleType:
    """A fresh ``tensorrt`` stand-in for ``version`` ("8.5", "8.6", "10.3", "10.16", "11.1", "11.4").

    ``fail_build``: make build_serialized_network log this text as an ERROR and return None,
    as TensorRT does when a build fails.
    """
    raw = _load_raw(version)
    state = _State(version, dla_cores=dla_cores, build_delay=build_delay, build_log=build_log, fail_build=fail_build)
    mod = types.ModuleType("tensorrt", f"recording stand-in for TensorRT {version} (generated from the API table)")
    mod.__version__ = FULL_VERSIONS[version]
    mod.calls = state.calls
    mod.standin_state = state
    for enum, values in raw["enums"].items():
        if "." not in enum:
            setattr(mod, enum, EnumNamespace(enum, values, raw.get("enum_attrs", {}).get(enum, [])))
    behaviours = _behaviours(mod, state)
    for cls, members in raw["classes"].items():
        generated = _make_class(cls, members, state, behaviours.get(cls, {}))
        for nested in ("Severity",):
            if nested in members and f"{cls}.{nested}" in raw["enums"]:
                ns = EnumNamespace(f"{cls}.{nested}", raw["enums"][f"{cls}.{nested}"], [])
                type.__setattr__(generated, nested, ns)
                for value_name in raw["enums"][f"{cls}.{nested}"]:
                    if value_name in members:
                        type.__setattr__(generated, value_name, getattr(ns, value_name))
        setattr(mod, cls, generated)
    for name in raw["module"]:
        if name not in NOT_API and not hasattr(mod, name):
            setattr(mod, name, _module_function(name, state))
    return mod


def _module_function(name: str, state: _State) -> Callable[..., Any]:
    def function(*args: Any) -> Any:
        raise StandinGap(f"stand-in has no behaviour for tensorrt.{name}()")

    return function


# ------------------------------------------------------------------ behaviours

def _behaviours(trt: Any, state: _State) -> Dict[str, Dict[str, Callable[..., Any]]]:
    def new(cls: str, **props: Any) -> Any:
        obj = object.__new__(getattr(trt, cls))
        object.__setattr__(obj, "_props", dict(props))
        return obj

    def builder_create_network(self: Any, flags: int = 0) -> Any:
        enum = trt.NetworkDefinitionCreationFlag
        names = sorted(v.name for v in enum.__members__.values() if flags & (1 << int(v)))
        net = new("INetworkDefinition")
        net._props.update(_flags=names, _layers=[], _inputs=[])
        return net

    def build_serialized_network(self: Any, network: Any, config: Any) -> Any:
        if not network._props.get("_parsed"):
            return None
        if state.fail_build:
            state.logger.log(trt.ILogger.ERROR, state.fail_build)
            return None
        if state.build_delay:
            time.sleep(state.build_delay)
        if state.build_log is not None:
            with open(state.build_log, "a") as fh:
                fh.write("build\n")
        cal = config._props.get("int8_calibrator")
        cache = cal.read_calibration_cache() if cal is not None else None
        flags = sorted(f.name for f in config._props.get("_flags", set()))
        pinned = sorted(config._props.get("_device_types", {}))
        dla = config._props.get("default_device_type") == trt.DeviceType.DLA
        plan = {"standin": state.version, "flags": flags, "network_flags": network._props["_flags"],
                "dla_core": config._props.get("DLA_core") if dla else None, "gpu_layers": pinned,
                "layers": network._props["_layers"], "inputs": network._props["_inputs"],
                "outputs": network._props.get("_outputs", []), "calibration_cache": cache.decode() if cache else None,
                "layer_outputs": network._props.get("_layer_outputs", {})}
        return _HostMemory(json.dumps(plan).encode())

    def parse_from_file(self: Any, path: str) -> bool:
        import onnx  # test-only: the stand-in reads the real model to know its layers and inputs

        model = onnx.load(str(path), load_external_data=False)
        net = self._props["_network"]
        net._props["_layers"] = [[n.name, n.op_type] for n in model.graph.node]
        net._props["_layer_outputs"] = {n.name: list(n.output) for n in model.graph.node}
        inits = {i.name for i in model.graph.initializer}
        net._props["_inputs"] = [[i.name, [d.dim_value if d.dim_value > 0 else -1 for d in i.type.tensor_type.shape.dim]]
                                 for i in model.graph.input if i.name not in inits]
        net._props["_outputs"] = [[o.name, [max(d.dim_value, 1) for d in o.type.tensor_type.shape.dim]]
                                  for o in model.graph.output]
        net._props.update(_parsed=True, num_layers=len(net._props["_layers"]), num_inputs=len(net._props["_inputs"]))
        return True

    def config_set_flag(self: Any, flag: Any) -> None:
        self._props.setdefault("_flags", set()).add(flag)

    def config_set_device_type(self: Any, layer: Any, device: Any) -> None:
        self._props.setdefault("_device_types", {})[layer.name] = device.name

    def create_timing_cache(self: Any, data: bytes) -> Any:
        if bytes(data).startswith(b"corrupt"):  # TensorRT logs an error and hands back no cache
            state.logger.log(trt.ILogger.ERROR, "Failed to deserialize the timing cache")
            return None
        return new("ITimingCache", _data=bytes(data))

    def get_timing_cache(self: Any) -> Any:
        return self._props.get("_timing_cache")

    def set_timing_cache(self: Any, cache: Any, ignore_mismatch: bool) -> bool:
        if cache._props["_data"].startswith(b"foreign"):  # lets a test play a cache from another device
            return False
        self._props["_timing_cache"] = cache
        return True

    def deserialize(self: Any, plan: bytes) -> Any:
        decoded = json.loads(bytes(plan).decode())
        io_count = len(decoded["inputs"]) + len(decoded["outputs"])
        return new("ICudaEngine", _plan=decoded, _runtime_dla=self._props.get("DLA_core"), num_io_tensors=io_count,
                   device_memory_size=1 << 20, device_memory_size_v2=1 << 20)

    def engine_io_names(self: Any) -> List[Tuple[str, Any, List[int]]]:
        plan = self._props["_plan"]
        return [(n, trt.TensorIOMode.INPUT, s) for n, s in plan["inputs"]] + \
               [(n, trt.TensorIOMode.OUTPUT, s) for n, s in plan["outputs"]]

    def get_engine_information(self: Any, fmt: Any) -> str:
        return json.dumps(_layer_info(self._props["_plan"]))

    return {
        "Logger": {"__init__": lambda self, *a: None},
        "ILogger": {},
        "Builder": {
            "__init__": lambda self, logger: self._props.update(num_DLA_cores=state.dla_cores,
                                                                _logger=_keep_first_logger(state, logger)),
            "create_network": builder_create_network,
            "create_builder_config": lambda self: new("IBuilderConfig"),
            "create_optimization_profile": lambda self: new("IOptimizationProfile"),
            "build_serialized_network": build_serialized_network,
        },
        "OnnxParser": {
            "__init__": lambda self, network, logger: self._props.update(_network=network, num_errors=0),
            "parse_from_file": parse_from_file,
            "get_error": lambda self, i: "no error",
        },
        "INetworkDefinition": {
            "get_layer": lambda self, i: new("ILayer", name=self._props["_layers"][i][0], type=self._props["_layers"][i][1]),
            "get_input": lambda self, i: new("ITensor", name=self._props["_inputs"][i][0], shape=tuple(self._props["_inputs"][i][1])),
        },
        "IBuilderConfig": {
            "set_flag": config_set_flag,
            "set_memory_pool_limit": lambda self, pool, size: self._props.setdefault("_pools", {}).update({pool.name: size}),
            "create_timing_cache": create_timing_cache,
            "set_timing_cache": set_timing_cache,
            "get_timing_cache": get_timing_cache,
            "add_optimization_profile": lambda self, profile: 0,
            "set_device_type": config_set_device_type,
        },
        "IOptimizationProfile": {"set_shape": lambda self, name, mn, opt, mx: None},
        "ITimingCache": {"serialize": lambda self: _HostMemory(self._props["_data"] + b"+tactics")},
        "Runtime": {"__init__": lambda self, logger: _keep_first_logger(state, logger) and None,
                    "deserialize_cuda_engine": deserialize},
        "ICudaEngine": {
            "create_engine_inspector": lambda self: new("EngineInspector", _plan=self._props["_plan"]),
            "get_tensor_name": lambda self, i: engine_io_names(self)[i][0],
            "get_tensor_mode": lambda self, name: {n: m for n, m, _ in engine_io_names(self)}[name],
            "get_tensor_shape": lambda self, name: {n: s for n, _, s in engine_io_names(self)}[name],
        },
        "EngineInspector": {"get_engine_information": get_engine_information},
    }


class _HostMemory(bytes):
    """IHostMemory stand-in: supports the buffer protocol (bytes(...)) like the real one."""


def _precision_format(plan: Dict[str, Any], names: List[str]) -> str:
    """Implicit INT8 as TensorRT does it: a layer runs INT8 only when the cache scales every output
    tensor of it ("Missing scale ... fall back to non-int8"); otherwise FP16 when allowed, else FP32."""
    cache = plan.get("calibration_cache") or ""
    scaled = {line.rpartition(":")[0].strip() for line in cache.splitlines()[1:]}
    outputs = [t for n in names for t in plan.get("layer_outputs", {}).get(n, [])]
    if "INT8" in plan["flags"] and outputs and all(t in scaled for t in outputs):
        return "Thirty-two wide channel vectorized row major Int8 format"
    return "Row major linear FP16 format" if "FP16" in plan["flags"] else "Row major linear FP32"


def _layer_info(plan: Dict[str, Any]) -> Dict[str, Any]:
    """TensorRT-shaped layer JSON (DETAILED): DLA-capable runs of layers fused into {ForeignNode[a...b]},
    each layer with its output ``Format/Datatype`` (see :func:`_precision_format`)."""
    layers: List[Dict[str, Any]] = []
    run: List[str] = []

    def flush() -> None:
        if run:
            layers.append({"Name": "{ForeignNode[" + run[0] + "..." + run[-1] + "]}", "LayerType": "DLA",
                           "Metadata": "\x1f".join(f"[ONNX Layer: {n}]" for n in run),
                           "Outputs": [{"Name": run[-1], "Format/Datatype": _precision_format(plan, run)}]})
            run.clear()

    pinned = set(plan["gpu_layers"])
    for name, op in plan["layers"]:
        on_dla = plan["dla_core"] is not None and op in DLA_OPS and name not in pinned
        if on_dla:
            run.append(name)
            continue
        flush()
        layers.append({"Name": name, "LayerType": op, "Metadata": f"[ONNX Layer: {name}]",
                       "Outputs": [{"Name": name, "Format/Datatype": _precision_format(plan, [name])}]})
    flush()
    return {"Layers": layers, "Bindings": [n for n, _ in plan["inputs"]] + [n for n, _ in plan["outputs"]]}
