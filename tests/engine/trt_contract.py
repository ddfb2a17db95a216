"""Static TensorRT API contract checker: every TensorRT name edgeinfer uses must exist in every
supported TensorRT version, unless the use sits behind a version guard the checker can see.

Source of truth: tests/data/trt_api/ (a copy of the API table read from the NVIDIA/TensorRT git
sources for 8.5, 8.6, 10.3, 10.16, 11.1 and from the 11.4.0.106 binding wheel).

What is checked (walking the AST of every file under edgeinfer/):
  * ``trt.X`` (X a module name, class or enum), ``trt.Enum.MEMBER``, ``trt.Class.ATTR`` and
    nested enums (``trt.ILogger.Severity.WARNING``). ``trt`` is the conventional name of the
    tensorrt module everywhere in edgeinfer (a parameter, or ``trt = require("tensorrt")``).
  * methods/attributes on TensorRT objects. An object is known when it is assigned from a
    TensorRT constructor (``trt.Builder(...)``) or factory (``builder.create_builder_config()``,
    table ``FACTORIES``), stored on ``self`` from one, or - in a module that touches TensorRT -
    passed as a parameter with a conventional name (``PARAMETER_TYPES``: builder, network,
    config, parser, engine, context, inspector, timing_cache, layer).

Guards the checker recognises (and the only ones edgeinfer uses):
  * ``@requires_trt(feature=..., min="8.6", max="10.16", max_major=10)`` on a function: its body
    is checked only against the versions in that range (edgeinfer.engine.trt_shim enforces the
    same range at run time, raising BuildError through ``fail_unavailable``).
  * ``if has_precision_flags(trt):`` and the other shim predicates in ``PREDICATES`` (also
    ``if not ...`` and the ``else`` branch): each branch is checked against the versions where
    the predicate holds / does not hold.
  * ``if hasattr(obj, "name"):``: inside that branch ``obj.name`` is not checked.
Anything else is checked against all six versions. Not tracked: objects whose type the checker
cannot infer (e.g. returned from our own helpers); keep TensorRT calls in the shim to stay covered.
"""
from __future__ import annotations

import ast
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "trt_api"
SUPPORTED = ("8.5", "8.6", "10.3", "10.16", "11.1", "11.4")
WHEEL_ONLY = {"11.4": "11.4.0.106"}
# Python-layer leftovers that are attributes of the module but not API (see the table's README).
NOT_API = {"attr", "value", "common_enter", "common_exit", "CURDIR", "find_lib", "try_load", "lib"}
ALWAYS_OK = {"__name__", "__qualname__", "__doc__", "__class__", "__module__", "__dict__"}
ENUM_AUTOMATIC = {"name", "value", "__members__"}

FACTORIES: Dict[Tuple[str, str], str] = {
    ("Builder", "create_network"): "INetworkDefinition",
    ("Builder", "create_builder_config"): "IBuilderConfig",
    ("Builder", "create_optimization_profile"): "IOptimizationProfile",
    ("Builder", "build_serialized_network"): "IHostMemory",
    ("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
    ("ICudaEngine", "create_execution_context"): "IExecutionContext",
    ("ICudaEngine", "create_engine_inspector"): "EngineInspector",
    ("ICudaEngine", "serialize"): "IHostMemory",
    ("IBuilderConfig", "create_timing_cache"): "ITimingCache",
    ("IBuilderConfig", "get_timing_cache"): "ITimingCache",
    ("INetworkDefinition", "get_layer"): "ILayer",
    ("INetworkDefinition", "get_input"): "ITensor",
    ("INetworkDefinition", "get_output"): "ITensor",
    ("ILayer", "get_output"): "ITensor",
    ("OnnxParser", "get_error"): "ParserError",
}
# edgeinfer.engine.trt_shim helpers that hand back TensorRT objects (called as trt_shim.X / shim.X).
SHIM_RETURNS: Dict[str, str] = {"deserialize": "ICudaEngine", "attach_timing_cache": "ITimingCache"}
PARAMETER_TYPES: Dict[str, str] = {
    "builder": "Builder", "network": "INetworkDefinition", "config": "IBuilderConfig", "parser": "OnnxParser",
    "engine": "ICudaEngine", "context": "IExecutionContext", "inspector": "EngineInspector",
    "timing_cache": "ITimingCache", "layer": "ILayer",
}
Version = Tuple[int, int]
PREDICATES: Dict[str, Callable[[Version], bool]] = {
    "has_precision_flags": lambda v: v[0] <= 10,
    "has_calibrator": lambda v: v[0] <= 10,
    "has_strongly_typed": lambda v: v[0] >= 10,
    "always_strongly_typed": lambda v: v[0] >= 11,
    "has_optimization_level": lambda v: v >= (8, 6),
}
MODULE = ("module", "")


@dataclass(frozen=True)
class ApiTable:
    version: str
    names: FrozenSet[str]
    classes: Dict[str, FrozenSet[str]]
    enums: Dict[str, Tuple[str, ...]]
    enum_attrs: Dict[str, FrozenSet[str]]

    @property
    def key(self) -> Version:
        major, minor = self.version.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    name: str
    missing_in: Tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name} is missing in TensorRT {', '.join(self.missing_in)}"


@functools.lru_cache(maxsize=None)
def load_tables(data_dir: Path = DATA_DIR) -> Dict[str, ApiTable]:
    """The API table per supported version, from the JSON files in tests/data/trt_api/."""
    main = json.loads((data_dir / "trt_python_api.json").read_text())
    wheels = json.loads((data_dir / "trt_python_api_wheels.json").read_text())
    tables = {}
    for version in SUPPORTED:
        raw = wheels[WHEEL_ONLY[version]] if version in WHEEL_ONLY else main[version]
        top = {n for n in list(raw["classes"]) + list(raw["enums"]) if "." not in n}
        names = (set(raw["module"]) | top) - NOT_API
        tables[version] = ApiTable(
            version=version, names=frozenset(names),
            classes={c: frozenset(m) for c, m in raw["classes"].items()},
            enums={e: tuple(v) for e, v in raw["enums"].items()},
            enum_attrs={e: frozenset(v) for e, v in raw.get("enum_attrs", {}).items()},
        )
    return tables


def _literal_kwargs(call: ast.Call) -> Dict[str, object]:
    out = {}
    for kw in call.keywords:
        if kw.arg and isinstance(kw.value, ast.Constant):
            out[kw.arg] = kw.value.value
    return out


def _parse(text: str) -> Version:
    parts = str(text).split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def _call_name(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@dataclass
class _Scope:
    env: Dict[str, Set[Tuple[str, str]]]
    versions: Tuple[str, ...]
    exempt: FrozenSet[Tuple[str, str]] = frozenset()
    self_types: Dict[str, Set[Tuple[str, str]]] = field(default_factory=dict)

    def child(self, **changes: object) -> "_Scope":
        data = {"env": dict(self.env), "versions": self.versions, "exempt": self.exempt, "self_types": self.self_types}
        data.update(changes)
        return _Scope(**data)  # type: ignore[arg-type]


class ContractChecker:
    """Walks Python sources and collects :class:`Violation` s against the API tables."""

    def __init__(self, tables: Optional[Dict[str, ApiTable]] = None) -> None:
        self.tables = tables or load_tables()
        self.violations: List[Violation] = []
        self._path = ""
        self._param_convention = False

    # -------------------------------------------------------------- entry points
    def check_source(self, source: str, path: str = "<string>") -> List[Violation]:
        tree = ast.parse(source)
        self._path = path
        self._param_convention = _touches_tensorrt(tree)
        start = len(self.violations)
        self._block(tree.body, _Scope(env={}, versions=SUPPORTED))
        return self.violations[start:]

    def check_tree(self, root: Path) -> List[Violation]:
        found: List[Violation] = []
        for path in sorted(root.rglob("*.py")):
            found += self.check_source(path.read_text(encoding="utf-8"), str(path.relative_to(root.parent)))
        return found

    # -------------------------------------------------------------- statements
    def _block(self, stmts: Iterable[ast.stmt], scope: _Scope) -> None:
        for stmt in stmts:
            self._stmt(stmt, scope)

    def _stmt(self, stmt: ast.stmt, scope: _Scope) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(stmt, scope)
        elif isinstance(stmt, ast.ClassDef):
            self._class(stmt, scope)
        elif isinstance(stmt, ast.If):
            self._if(stmt, scope)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            value = stmt.value
            if value is not None:
                self._expr(value, scope)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            types = self._type_of(value, scope) if value is not None else set()
            for target in targets:
                if isinstance(target, ast.expr):
                    self._expr(target, scope)  # `config.max_workspace_size = ...` is a use too
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                    for elt, item in zip(target.elts, value.elts):  # `trt, engine = self.trt, self.engine`
                        self._assign(elt, self._type_of(item, scope), scope)
                    continue
                self._assign(target, types, scope)
        else:
            for name, value in ast.iter_fields(stmt):
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    self._block(value, scope)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.excepthandler):
                            self._block(item.body, scope)
                        elif isinstance(item, ast.withitem):
                            self._expr(item.context_expr, scope)
                            if item.optional_vars is not None:
                                self._assign(item.optional_vars, self._type_of(item.context_expr, scope), scope)
                        elif isinstance(item, ast.expr):
                            self._expr(item, scope)
                elif isinstance(value, ast.expr):
                    self._expr(value, scope)
                    if name == "target":
                        self._assign(value, set(), scope)

    def _assign(self, target: ast.expr, types: Set[Tuple[str, str]], scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            scope.env[target.id] = set(types)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            if types:
                scope.self_types[target.attr] = set(types)
        elif isinstance(target, ast.Tuple):
            for elt in target.elts:
                self._assign(elt, set(), scope)

    def _function(self, node: ast.AST, scope: _Scope) -> None:
        versions = scope.versions
        for deco in node.decorator_list:  # type: ignore[attr-defined]
            self._expr(deco, scope)
            if isinstance(deco, ast.Call) and _call_name(deco) == "requires_trt":
                kw = _literal_kwargs(deco)
                versions = tuple(v for v in versions if self._in_range(v, kw))
        inner = scope.child(versions=versions)
        args = node.args  # type: ignore[attr-defined]
        for arg in args.posonlyargs + args.args + args.kwonlyargs:
            typ = PARAMETER_TYPES.get(arg.arg) if self._param_convention else None
            inner.env[arg.arg] = {("inst", typ)} if typ else set()
        self._block(node.body, inner)  # type: ignore[attr-defined]

    def _in_range(self, version: str, kw: Dict[str, object]) -> bool:
        key = self.tables[version].key
        if "min" in kw and key < _parse(str(kw["min"])):
            return False
        if "max" in kw and key > _parse(str(kw["max"])):
            return False
        return not ("max_major" in kw and key[0] > int(kw["max_major"]))  # type: ignore[call-overload]

    def _class(self, node: ast.ClassDef, scope: _Scope) -> None:
        for base in node.bases:
            self._expr(base, scope)
        inner = scope.child(self_types={})
        # Two passes: the first learns self.<attr> types from every method, the second checks uses.
        silent = ContractChecker(self.tables)
        silent._param_convention, silent._path = self._param_convention, self._path
        silent._block(node.body, inner)
        self._block(node.body, inner)

    def _if(self, node: ast.If, scope: _Scope) -> None:
        self._expr(node.test, scope)
        test, negate = node.test, False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test, negate = test.operand, True
        name = _call_name(test) if isinstance(test, ast.Call) else None
        if name in PREDICATES:
            holds = tuple(v for v in scope.versions if PREDICATES[name](self.tables[v].key))
            fails = tuple(v for v in scope.versions if v not in holds)
            body_v, else_v = (fails, holds) if negate else (holds, fails)
            self._block(node.body, scope.child(versions=body_v))
            self._block(node.orelse, scope.child(versions=else_v))
            return
        if isinstance(test, ast.Call) and _call_name(test) == "hasattr" and not negate and len(test.args) == 2 \
                and isinstance(test.args[1], ast.Constant):
            exempt = scope.exempt | {(ast.dump(test.args[0]), str(test.args[1].value))}
            self._block(node.body, scope.child(exempt=exempt))
            self._block(node.orelse, scope)
            return
        self._block(node.body, scope)
        self._block(node.orelse, scope)

    # -------------------------------------------------------------- expressions
    def _expr(self, node: ast.expr, scope: _Scope) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                self._check_attribute(sub, scope)

    def _type_of(self, node: Optional[ast.AST], scope: _Scope) -> Set[Tuple[str, str]]:
        if node is None:
            return set()
        if isinstance(node, ast.Name):
            return {MODULE} if node.id == "trt" else set(scope.env.get(node.id, set()))
        if isinstance(node, ast.IfExp):
            return self._type_of(node.body, scope) | self._type_of(node.orelse, scope)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return set(scope.self_types.get(node.attr, set()))
            return {t for base in self._type_of(node.value, scope) for t in self._member_type(base, node.attr)}
        if isinstance(node, ast.Call):
            if _call_name(node) == "require" and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "tensorrt":
                return {MODULE}
            if isinstance(node.func, ast.Attribute) and node.func.attr in SHIM_RETURNS \
                    and "shim" in ast.unparse(node.func.value):
                return {("inst", SHIM_RETURNS[node.func.attr])}
            result = set()
            for kind, name in self._type_of(node.func, scope):
                if kind == "class":
                    result.add(("inst", name))
                if kind == "method" and tuple(name.split(":")) in FACTORIES:
                    result.add(("inst", FACTORIES[tuple(name.split(":"))]))  # type: ignore[index]
            return result
        return set()

    def _member_type(self, base: Tuple[str, str], attr: str) -> Set[Tuple[str, str]]:
        kind, name = base
        if kind == "module":
            if any(attr in t.enums for t in self.tables.values()):
                return {("enum", attr)}
            if any(attr in t.classes for t in self.tables.values()):
                return {("class", attr)}
        elif kind == "class" and any(f"{name}.{attr}" in t.enums for t in self.tables.values()):
            return {("enum", f"{name}.{attr}")}
        elif kind == "inst":
            return {("method", f"{name}:{attr}")}
        return set()

    def _check_attribute(self, node: ast.Attribute, scope: _Scope) -> None:
        if (ast.dump(node.value), node.attr) in scope.exempt or node.attr in ALWAYS_OK:
            return
        for base in self._type_of(node.value, scope):
            missing = tuple(v for v in scope.versions if not self._has(self.tables[v], base, node.attr))
            if missing:
                self.violations.append(Violation(self._path, node.lineno, ast.unparse(node), missing))

    @staticmethod
    def _has(table: ApiTable, base: Tuple[str, str], attr: str) -> bool:
        kind, name = base
        if kind == "module":
            return attr in table.names
        if kind in ("class", "inst"):
            if name not in table.classes:
                return True  # the class itself is reported where it is named
            return attr in table.classes[name]
        if kind == "enum":
            if name not in table.enums:
                return True
            return attr in table.enums[name] or attr in table.enum_attrs.get(name, ()) or attr in ENUM_AUTOMATIC
        return True


def _touches_tensorrt(tree: ast.AST) -> bool:
    """A module that takes ``trt`` as a parameter or requires "tensorrt" gets the parameter convention."""
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.arg == "trt":
            return True
        if isinstance(node, ast.Call) and _call_name(node) == "require" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "tensorrt":
            return True
    return False


def check_package(root: Path) -> List[Violation]:
    """All violations under ``root`` (the edgeinfer package directory)."""
    return ContractChecker().check_tree(root)
