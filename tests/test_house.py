"""The shape of the house (docs/ARCHITECTURE.md): no import circle, no import from a lower floor to a
higher one, no function that needs scrolling, no module that holds several ideas by size."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tfcompress"
MAX_FUNCTION_LINES = 50  # code lines of one function, its docstring not counted
MAX_MODULE_LINES = 400

#: floor of each top-level module or subpackage: a module may import only from its own floor or below
FLOORS = {
    "_keras": 0, "_allocators": 0, "errors": 0, "objectives": 0, "_io": 0, "tflite_file": 0, "metrics": 0,
    "tolerance": 0,
    "choices": 0, "__init__": 0,
    "data": 1, "models": 1,
    "distill": 2, "prune": 2, "quantize": 2, "export": 2, "callbacks": 2, "pretrained": 2,
    "optimizers": 2,
    "bench": 3,
    "tasks": 4, "stages": 4,
    "pipeline": 5, "tune": 5,
    "cli": 6, "bench_command": 6, "tune_command": 6, "run_options": 6, "data_command": 6, "__main__": 6,
}


def _modules():
    """``{dotted name: path}`` of every module in the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module, path, node):
    """The dotted names an import statement in ``module`` refers to (inside the package only)."""
    is_package = path.name == "__init__.py"
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "tfcompress"]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "tfcompress":
        return []
    return [target] + [f"{target}.{a.name}" for a in node.names]


def import_graph():
    """``{module: set of modules it imports}``, counting imports inside functions too. Importing
    ``tfcompress.a.b`` also runs ``tfcompress.a``'s ``__init__``, so that is an edge as well (except from
    inside ``tfcompress.a``, whose ``__init__`` is already running)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                target, *members = _resolve(name, path, node) or [None]
                if target is None:
                    continue
                hits = [m for m in members if m in modules]  # ``from pkg import submodule``
                if len(hits) < len(members) or not members:
                    hits.append(target)
                for hit in hits:
                    parts = hit.split(".")
                    edges.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        graph[name] = {e for e in edges if e in modules and e != name and not name.startswith(e + ".")}
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _floor(module):
    parts = module.split(".")
    return FLOORS.get(parts[1] if len(parts) > 1 else "__init__")


def test_no_import_circle():
    assert _cycles(import_graph()) == []


def test_every_module_has_a_floor():
    assert [m for m in import_graph() if _floor(m) is None] == []


def test_no_import_from_a_lower_floor_to_a_higher_one():
    bad = sorted(f"{m} (floor {_floor(m)}) imports {e} (floor {_floor(e)})"
                 for m, es in import_graph().items() for e in es if (_floor(e) or 0) > (_floor(m) or 0))
    assert bad == []


def _code_lines(node):
    body = node.body
    start = node.lineno
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = body[0].end_lineno - body[0].lineno + 1
        return node.end_lineno - start + 1 - doc
    return node.end_lineno - start + 1


def test_no_function_needs_scrolling():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_no_module_holds_several_ideas_by_size():
    big = [f"{p.relative_to(PACKAGE.parent)} ({n} lines)" for p in sorted(PACKAGE.rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert big == []


def test_the_graph_sees_a_circle():
    """The checker itself: a two-module circle is found, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
