"""The C side of a block's declaration: C types, C arrays and the array indexes proven in range.

Part of the generator (_gen.py): standard library only, it runs before anything is installed.
A variable's annotation gives its C type (``bool`` → bint, ``float`` → double, ``int`` → long
long, ``list``/``dict``/``tuple`` → that Python type, ``str`` and anything else → object). A
fixed-size list of numbers (``list[bool]`` initialised ``[False] * 5``) is a C array.

An array index is used as is when it is provably in range: a number, a module constant, the
variable of a ``for i in range(n)`` loop that nothing else assigns, or an argument of a private
helper that every call of the helper in the class passes such a value. Any other index is
checked at run time as a list index is (``_index`` in the generated module), so a C array
never reads or writes out of bounds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

SCALARS = {"bool": "bint", "float": "double", "int": "long long"}
# A ``str`` variable is a C ``object``: a typed ``str`` attribute refuses subclasses, and apps
# pass StrEnum members (``PhaseCommand.HOLD``) where the pure-Python block takes any str.
_OBJECTS = {"str": "object", "list": "list", "dict": "dict", "tuple": "tuple"}

# name → (C type, name, value) of a private module constant bound to a number
Constants = dict[str, tuple[str, str, int | float]]


class GenerateError(Exception):
    """A block module uses something the generator cannot carry into the compiled build."""


def number(node: ast.expr | None) -> int | float | None:
    """The value of a number literal (also negative), else None."""
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return value if type(value) in (bool, int, float) else None


def py_number(value: int | float) -> str:
    """Source text of a number, NaN included."""
    if isinstance(value, float) and value != value:
        return "float('nan')"
    return repr(value)


def c_constant(node: ast.stmt) -> tuple[str, str, int | float] | None:
    """(C type, name, value) of a private module constant bound to a number, else None."""
    target: ast.expr
    if isinstance(node, ast.AnnAssign):
        target, value = node.target, node.value
    elif isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    else:
        return None
    num = number(value)
    if not isinstance(target, ast.Name) or not target.id.startswith("_") or num is None:
        return None
    return {bool: "bint", int: "long long", float: "double"}[type(num)], target.id, num


def constant_decl(ctype: str, name: str, value: int | float) -> str:
    """The declaration of a C constant: an enum (a compile-time constant) for an int."""
    if ctype == "long long" and -(2**31) <= value < 2**31:
        return f"cdef enum:\n    {name} = {value}"
    return f"cdef {ctype} {name} = {py_number(value)}"


def _annotation(node: ast.expr | None) -> ast.expr | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        return ast.parse(node.value, mode="eval").body
    return node


def c_type(node: ast.expr | None) -> str:
    """The C type of an annotation: a scalar, a Python builtin type, else object."""
    node = _annotation(node)
    if isinstance(node, ast.Name):
        return SCALARS.get(node.id, _OBJECTS.get(node.id, "object"))
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return _OBJECTS.get(node.value.id, "object")
    return "object"


def _array(note: ast.expr, init: ast.expr) -> tuple[str, list[int | float]] | None:
    """(C element type, initial items) of a fixed-size list of numbers, else None."""
    ann = _annotation(note)
    if not (
        isinstance(ann, ast.Subscript)
        and isinstance(ann.value, ast.Name)
        and ann.value.id == "list"
        and isinstance(ann.slice, ast.Name)
        and ann.slice.id in SCALARS
    ):
        return None
    items: list[ast.expr] = []
    if isinstance(init, ast.List):
        items = list(init.elts)
    elif isinstance(init, ast.BinOp) and isinstance(init.op, ast.Mult):
        times = number(init.right)
        if isinstance(init.left, ast.List) and type(times) is int:
            items = list(init.left.elts) * times
    values = [number(item) for item in items]
    if not values or None in values:
        return None
    return SCALARS[ann.slice.id], values  # type: ignore[return-value]


@dataclass
class Var:
    """One declared variable of a block class, as the compiled class holds it."""

    name: str
    note: ast.expr
    init: ast.expr
    ctype: str  # bint, double, long long, str, list, ..., object; an array's item type
    size: int = 0  # > 0: a C array of this many items
    items: tuple[int | float, ...] = ()

    @classmethod
    def declared(cls, name: str, note: ast.expr, init: ast.expr) -> Var:
        array = _array(note, init)
        if array:
            return cls(name, note, init, array[0], len(array[1]), tuple(array[1]))
        return cls(name, note, init, c_type(note))

    def cinit(self) -> list[str]:
        """``__cinit__`` lines that give the variable its initial value (C zero needs none)."""
        if self.size:
            return [
                f"        self._arr_{self.name}[{i}] = {py_number(v)}"
                for i, v in enumerate(self.items)
                if v != 0 or repr(v).startswith("-")
            ]
        value = number(self.init)
        if self.ctype in SCALARS.values() and value is not None:
            if value == 0 and not repr(value).startswith("-"):
                return []
            return [f"        self.{self.name} = {py_number(value)}"]
        try:
            literal = repr(ast.literal_eval(self.init))
        except ValueError:  # a name or an expression: taken from the declaration, as Python does
            return [f"        self.{self.name} = _initial(type(self)._VARS[{self.name!r}])"]
        return [f"        self.{self.name} = {literal}"]

    def array_property(self, cls: str) -> list[str]:
        """The Python view of a C array: a list copy; assigning as many items replaces them."""
        n, arr = self.size, f"self._arr_{self.name}"
        return [
            "",
            "    @property",
            f"    def {self.name}(self):",
            f'        """A copy of the {n} items; assigning {n} items replaces them."""',
            f"        return {arr}",
            "",
            f"    @{self.name}.setter",
            f"    def {self.name}(self, value):",
            f"        cdef {self.ctype} items[{n}]",
            f"        if len(value) != {n}:",
            f'            raise ValueError("{cls}.{self.name} needs {n} values")',
            "        items = value",
            f"        {arr} = items",
        ]


def c_attributes(own: list[Var]) -> list[str]:
    """The C attribute declarations of a block class's own variables."""
    by_type: dict[str, list[str]] = {}
    arrays = []
    for var in own:
        if var.size:
            arrays.append(f"    cdef {var.ctype} _arr_{var.name}[{var.size}]")
        else:
            by_type.setdefault(var.ctype, []).append(var.name)
    return [f"    cdef public {t} {', '.join(names)}" for t, names in by_type.items()] + arrays


# --- which array indexes need no run-time check ---------------------------------------------


def _int_value(node: ast.expr, constants: Constants) -> int | None:
    if isinstance(node, ast.Name) and node.id in constants:
        value: int | float | None = constants[node.id][2]
    else:
        value = number(node)
    return value if type(value) is int else None


def targets(node: ast.AST) -> list[str]:
    """The local names a statement (re)binds."""
    if isinstance(node, ast.For | ast.comprehension):
        return _bound(node.target)
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _bound(t)]
    if isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
        return _bound(node.target)
    if isinstance(node, ast.NamedExpr):
        return [node.target.id]
    return []


def _bound(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _bound(elt)]
    if isinstance(target, ast.Starred):
        return _bound(target.value)
    return []  # an attribute or an item: binds no local


def range_loops(fn: ast.FunctionDef, constants: Constants) -> dict[str, set[int]]:
    """Variables of ``for x in range(<known>)`` loops that nothing else assigns → values."""
    found: dict[str, set[int]] = {}
    assigned: dict[str, int] = {}
    for node in ast.walk(fn):
        for name in targets(node):
            assigned[name] = assigned.get(name, 0) + 1
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Call)
            and isinstance(node.iter.func, ast.Name)
            and node.iter.func.id == "range"
            and not node.iter.keywords
            and 1 <= len(node.iter.args) <= 2
        ):
            bounds = [_int_value(a, constants) for a in node.iter.args]
            if None not in bounds:
                lo, hi = (0, bounds[0]) if len(bounds) == 1 else bounds
                found[node.target.id] = set(range(lo, hi))  # type: ignore[arg-type]
    params = {a.arg for a in fn.args.args}
    return {n: v for n, v in found.items() if assigned.get(n) == 1 and n not in params}


def index_values(
    node: ast.expr,
    constants: Constants,
    loops: dict[str, set[int]],
    proven: dict[tuple[str, str], set[int]],
    fn: str,
) -> set[int] | None:
    """The values an index expression can take, if provably a known set, else None."""
    value = _int_value(node, constants)
    if value is not None:
        return {value}
    if isinstance(node, ast.Name):
        return loops[node.id] if node.id in loops else proven.get((fn, node.id))
    return None


def prove_helper_indexes(
    methods: list[ast.FunctionDef], constants: Constants
) -> dict[tuple[str, str], set[int]]:
    """(helper, argument) → the values that every call of the helper in the class passes."""
    params = {
        m.name: [a.arg for a in m.args.args[1:]]
        for m in methods
        if m.name.startswith("_")
        and not m.name.startswith("__")
        and not (m.args.vararg or m.args.kwarg or m.args.kwonlyargs or m.args.defaults)
    }
    reassigned = {
        (m.name, name)
        for m in methods
        if m.name in params
        for n in ast.walk(m)
        for name in targets(n)
    }
    sites = _call_sites(methods, params)
    loops = {m.name: range_loops(m, constants) for m in methods}
    proven: dict[tuple[str, str], set[int]] = {}
    for _ in range(len(sites) + 1):  # to a fixed point: a proven argument proves its callees'
        for key, calls in sites.items():
            if key in proven or key in reassigned or not calls or None in calls:
                continue
            union: set[int] = set()
            for caller, arg in calls:  # type: ignore[misc]
                values = index_values(arg, constants, loops[caller], proven, caller)
                if values is None:
                    break
                union |= values
            else:
                proven[key] = union
    return proven


def _call_sites(
    methods: list[ast.FunctionDef], params: dict[str, list[str]]
) -> dict[tuple[str, str], list[tuple[str, ast.expr] | None]]:
    """(helper, argument) → (calling method, argument expression) of every call; None: unknown."""
    sites: dict[tuple[str, str], list[tuple[str, ast.expr] | None]] = {
        (h, p): [] for h, ps in params.items() for p in ps
    }
    for method in methods:
        called = set()
        for call in ast.walk(method):
            helper = _self_attr(call.func) if isinstance(call, ast.Call) else None
            if not isinstance(call, ast.Call) or helper is None or helper not in params:
                continue
            called.add(id(call.func))
            given = dict(zip(params[helper], call.args, strict=False))
            given.update({k.arg: k.value for k in call.keywords if k.arg})
            for p in params[helper]:
                arg = given.get(p)
                sites[(helper, p)].append((method.name, arg) if arg is not None else None)
        for node in ast.walk(method):
            helper = _self_attr(node)
            if helper is not None and helper in params and id(node) not in called:
                for p in params[helper]:  # passed on, not called: its arguments are unknown
                    sites[(helper, p)].append(None)
    return sites


def _self_attr(node: ast.AST) -> str | None:
    """``name`` of ``self.name``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "self" else None
    return None
