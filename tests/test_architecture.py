"""The project's import graph: no cycle, no layer imports a layer above it, and no product module imports a
project module inside a function unless that keeps it out of a DAG parse; and no product function longer than
80 lines or taking more than 8 parameters.

Function-level imports count as much as module-level ones: they hide a dependency from the reader and from
import order, not from the design, and the cycles this test was written against all ran through them.
``if TYPE_CHECKING:`` imports count too: a type a module names is a module it depends on. The graph comes
from parsing the source with ``ast``, so nothing is imported and the whole check takes well under a second.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("campaign_loop", "ingest", "expectations", "ml", "sim", "dags", "bench")

Edge = tuple[str, str]
Site = tuple[str, int]  # (path relative to the repo, line) of one import statement


@dataclass(frozen=True)
class Layer:
    name: str
    reason: str
    # Exact module names, or "pkg.*" for a package and everything under it; the most specific entry wins,
    # so a module can sit in another layer than its package (sim.oracle is evaluation, not simulator).
    modules: tuple[str, ...]


# Lowest first: a module may import its own layer and the layers before it, never one after it.
LAYERS: tuple[Layer, ...] = (
    Layer("core", "settings, the action catalogue and the contracts every other layer reads",
          ("campaign_loop", "campaign_loop.config", "campaign_loop.actions", "campaign_loop.fault_specs",
           "campaign_loop.readiness", "campaign_loop.dbt_duckdb_plugin", "ingest.contract")),
    Layer("sim", "the simulated retailer writes landing files from the settings and the contract alone",
          ("sim.*",)),
    Layer("ingest", "landing files into the raw layer; it reads files, whoever wrote them",
          ("ingest.*",)),
    Layer("warehouse", "the dbt runner, retention, which renders dbt's macros to match staging's hashes, and "
          "the marts' reader for every engine dbt builds on",
          ("campaign_loop.dbt", "ingest.retention", "campaign_loop.warehouse")),
    Layer("quality", "the gates judge what ingest and dbt wrote",
          ("expectations.*",)),
    Layer("ml", "models, scores and the plan, over the warehouse the gates passed",
          ("ml.*",)),
    Layer("app", "the cycle's steps as the DAG calls them, its report and the surfaces people use",
          ("campaign_loop.pipeline", "campaign_loop.cycle_report.*", "campaign_loop.report", "campaign_loop.ui",
           "campaign_loop.runner", "campaign_loop.deploy", "campaign_loop.own_data", "campaign_loop.lift",
           "campaign_loop.attribution", "campaign_loop.airflow_links", "campaign_loop.trigger_journeys")),
    Layer("evaluation", "judges the platform by the simulator's truth, driving the app's pipeline to do it",
          ("sim.oracle", "ml.policies")),
    Layer("entry", "front ends that wire every layer: the CLI and demo show the evaluation too",
          ("campaign_loop.cli", "campaign_loop.demo", "dags.*", "bench.*")),
)

# Upward imports tolerated for now, each named with why and what would remove it. Empty: every import the
# contract forbids is gone; an entry whose import has since gone fails test_named_exceptions_are_still_needed.
EXCEPTIONS: dict[Edge, str] = {}

# A module-level import is the rule. A project module is imported inside a function only to keep it out of a
# DAG parse, which Airflow repeats in every task's process and in the dag-processor's loop: in a module the
# parse loads (the DAG files, and the deploy profile's cluster policy loaded into every Airflow process), of
# a module the parse does not load anyway. The product packages only, as for the functions' sizes below.
# Modules allowed more, each with why:
LAZY_IMPORTS: dict[str, str] = {
    "campaign_loop.cli": "each command imports only what it runs: `campaign-loop --help` loads in about 3 s, "
    "every command's modules together in about 8 s (scikit-learn, MLflow, Great Expectations, Airflow)",
}
PARSE_ROOTS = ("dags", "deploy")  # the DAG files; deploy/airflow_local_settings.py (Airflow imports it)

# A function longer than this is split into named steps; one taking more parameters than MAX_PARAMETERS takes
# the ones that travel together as a small frozen dataclass. The product packages only: the benchmarks and
# the tests are not held to it.
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 8  # self and cls not counted; *args and **kwargs one each
PRODUCT_PACKAGES = ("campaign_loop", "ingest", "ml", "expectations", "dags", "sim")
# Functions ("path:qualified name") allowed over either limit, each with why; an entry whose function has
# since fitted both (or gone) fails test_function_allowances_are_still_needed. The simulator's generators only.
LARGE_FUNCTIONS: dict[str, str] = {
    "sim/period.py:simulate_period": "one cycle of the simulated world, its seeded draws in one fixed order "
    "that any regrouping of steps risks changing",
    "sim/transactions.py:make_transactions": "orders, receipts and their lines from one random stream, drawn "
    "in the order the landed files and the truth depend on",
    "sim/events.py:make_sessions": "each optional column is drawn only when the caller has none, so the "
    "parameters are the generator's seams, not a bundle that travels together",
}


# --- the graph ----------------------------------------------------------------------------------------

def project_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by dotted name (a package by its ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module an import of ``name`` executes last: ``a.b.C`` (a class in a.b) is ``a.b``."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@dataclass(frozen=True)
class Import:
    """One project module imported by one statement."""

    source: str
    target: str
    site: Site
    in_function: bool  # inside a def: runs when the function is first called, not when the module loads
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs


def imports(root: Path, packages: Iterable[str]) -> tuple[dict[str, Path], list[Import]]:
    """The project modules by name and every import of one of them by another, at any nesting level."""
    modules = project_modules(root, packages)
    found = [one for module, path in modules.items() for one in _imports_of(module, path, root, modules)]
    return modules, found


def _imports_of(module: str, path: Path, root: Path, modules: Mapping[str, Path]) -> list[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import mod` imports the submodule; `from mod import name` the module itself.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names]
            for target in sorted({t for t in (_known(n, modules) for n in targets) if t and t != module}):
                found.append(Import(module, target, (str(path.relative_to(root)), child.lineno), in_function,
                                    type_checking))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda),
                  type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)))

    visit(ast.parse(path.read_text(), filename=str(path)), False, False)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> tuple[list[str], dict[Edge, list[Site]]]:
    """The project modules and, per importing edge, every statement that makes it, at any nesting level."""
    modules, found = imports(root, packages)
    edges: dict[Edge, list[Site]] = {}
    for one in found:
        edges.setdefault((one.source, one.target), []).append(one.site)
    return sorted(modules), edges


def loaded_with(roots: Iterable[str], found: Iterable[Import], modules: Iterable[str]) -> set[str]:
    """The modules that loading ``roots`` executes: the closure of the imports that run at import time, each
    module's packages with it (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    modules = set(modules)
    at_load: dict[str, set[str]] = {}
    for one in found:
        if not (one.in_function or one.type_checking):
            at_load.setdefault(one.source, set()).add(one.target)
    loaded: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module not in loaded:
            loaded.add(module)
            pending.extend(at_load.get(module, ()))
            pending.extend(p for p in (module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1))
                           if p in modules)
    return loaded


def needless_function_imports(found: Iterable[Import], parse_time: set[str],
                              allowed: Iterable[str]) -> list[Import]:
    """Function-level imports that keep nothing out of a DAG parse: in a module the parse does not load, or
    of a module it loads anyway; those in ``allowed`` modules excepted."""
    allowed = set(allowed)
    return [one for one in found if one.in_function and one.source not in allowed
            and not (one.source in parse_time and one.target not in parse_time)]


def strongly_connected(nodes: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit on a deep chain)."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
        successors.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in successors:
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def cycles(nodes: Iterable[str], edges: Mapping[Edge, list[Site]]) -> list[str]:
    """Each import cycle (a component of more than one module) with the import lines that close it."""
    found = []
    for component in strongly_connected(nodes, edges):
        if len(component) < 2:
            continue
        members = set(component)
        lines = [f"    {path}:{line}  {source} -> {target}"
                 for (source, target), sites in sorted(edges.items())
                 if source in members and target in members for path, line in sorted(sites)]
        found.append(f"cycle of {len(component)} modules: {', '.join(component)}\n" + "\n".join(lines))
    return found


def layer_of(module: str, layers: Iterable[Layer]) -> int | None:
    """The index of the module's layer: an exact entry first, else its deepest ``pkg.*`` entry."""
    best: tuple[int, int] | None = None  # (specificity, layer index)
    for i, layer in enumerate(layers):
        for entry in layer.modules:
            if entry == module:
                return i
            package = entry.removesuffix(".*")
            if entry.endswith(".*") and (module == package or module.startswith(package + ".")):
                depth = package.count(".") + 1
                if best is None or depth > best[0]:
                    best = (depth, i)
    return None if best is None else best[1]


def upward_imports(edges: Mapping[Edge, list[Site]], layers: tuple[Layer, ...]) -> dict[Edge, list[Site]]:
    """The edges from a layer to one above it."""
    ranks = {m: layer_of(m, layers) for edge in edges for m in edge}
    return {(s, t): sites for (s, t), sites in edges.items()
            if ranks[s] is not None and ranks[t] is not None and ranks[t] > ranks[s]}


def describe(edges: Mapping[Edge, list[Site]], layers: tuple[Layer, ...]) -> str:
    return "\n".join(
        f"    {path}:{line}  {s} ({layers[layer_of(s, layers)].name}) imports {t} "
        f"({layers[layer_of(t, layers)].name})"
        for (s, t), sites in sorted(edges.items()) for path, line in sorted(sites))


Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions(root: Path, packages: Iterable[str]) -> dict[str, tuple[Function, bool]]:
    """Every function and method of ``packages`` by ``path:qualified name`` (a nested function is
    ``outer.inner``, a method ``Class.method``), with whether it is defined directly in a class."""
    found: dict[str, tuple[Function, bool]] = {}

    def visit(node: ast.AST, prefix: str, path: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found[f"{path}:{name}"] = (child, isinstance(node, ast.ClassDef))
                visit(child, f"{name}.", path)
            else:
                visit(child, prefix, path)

    for path in project_modules(root, packages).values():
        visit(ast.parse(path.read_text(), filename=str(path)), "", str(path.relative_to(root)))
    return found


def line_count(node: Function) -> int:
    """From the ``def`` to the function's last line."""
    return (node.end_lineno or node.lineno) - node.lineno + 1


def function_lengths(root: Path, packages: Iterable[str]) -> dict[str, int]:
    return {name: line_count(node) for name, (node, _) in functions(root, packages).items()}


def parameter_count(node: Function, is_method: bool) -> int:
    """The parameters a caller fills: a method's ``self`` or ``cls`` is not one of them."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    bound = is_method and bool(positional) and positional[0].arg in ("self", "cls") and not any(
        isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    return len(positional) - bound + len(args.kwonlyargs) + (args.vararg is not None) + (args.kwarg is not None)


def function_parameters(root: Path, packages: Iterable[str]) -> dict[str, int]:
    return {name: parameter_count(node, is_method) for name, (node, is_method) in functions(root, packages).items()}


@pytest.fixture(scope="module")
def graph() -> tuple[list[str], dict[Edge, list[Site]]]:
    return import_graph(REPO, PACKAGES)


@pytest.fixture(scope="module")
def shapes() -> dict[str, tuple[int, int]]:
    """(lines, parameters) of every product function, parsed once for the tests that read them."""
    return {name: (line_count(node), parameter_count(node, is_method))
            for name, (node, is_method) in functions(REPO, PRODUCT_PACKAGES).items()}


# --- the project --------------------------------------------------------------------------------------

def test_the_project_has_no_import_cycle(graph) -> None:
    nodes, edges = graph
    assert {"campaign_loop.config", "sim.faults", "ml.tracking", "dags.campaign_feedback_loop"} <= set(nodes)
    found = cycles(nodes, edges)
    assert not found, "import cycles (move what both sides need to the lower layer):\n" + "\n".join(found)


def test_every_module_has_a_layer(graph) -> None:
    nodes, _ = graph
    unplaced = [m for m in nodes if layer_of(m, LAYERS) is None]
    assert not unplaced, f"add these modules to a layer of LAYERS in {Path(__file__).name}: {unplaced}"


def test_no_layer_imports_a_layer_above_it(graph) -> None:
    _, edges = graph
    upward = {edge: sites for edge, sites in upward_imports(edges, LAYERS).items() if edge not in EXCEPTIONS}
    assert not upward, ("imports of a higher layer (move the shared code down, or the importer up):\n"
                        + describe(upward, LAYERS))


def test_named_exceptions_are_still_needed(graph) -> None:
    _, edges = graph
    upward = upward_imports(edges, LAYERS)
    stale = [edge for edge in EXCEPTIONS if edge not in upward]
    assert not stale, f"these exceptions no longer happen; delete them from EXCEPTIONS: {stale}"


def test_no_product_function_is_longer_than_80_lines(shapes) -> None:
    assert {"ml/decide/design.py:design_campaign", "sim/period.py:simulate_period"} <= set(shapes)
    long = {f: n for f, (n, _) in shapes.items() if n > MAX_FUNCTION_LINES and f not in LARGE_FUNCTIONS}
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n"
                      + "\n".join(f"    {f}: {n} lines" for f, n in sorted(long.items())))


def test_no_product_function_takes_more_than_8_parameters(shapes) -> None:
    many = {f: n for f, (_, n) in shapes.items() if n > MAX_PARAMETERS and f not in LARGE_FUNCTIONS}
    assert not many, (f"functions of more than {MAX_PARAMETERS} parameters (pass the ones that travel together "
                      "as a frozen dataclass):\n" + "\n".join(f"    {f}: {n} parameters" for f, n in sorted(many.items())))


def test_function_allowances_are_still_needed(shapes) -> None:
    within = {f for f, (lines, parameters) in shapes.items()
              if lines <= MAX_FUNCTION_LINES and parameters <= MAX_PARAMETERS}
    stale = [f for f in LARGE_FUNCTIONS if f in within or f not in shapes]
    assert not stale, (f"these functions fit in {MAX_FUNCTION_LINES} lines and {MAX_PARAMETERS} parameters, or are "
                       f"gone; delete them from LARGE_FUNCTIONS: {stale}")


@pytest.fixture(scope="module")
def parse_imports() -> tuple[set[str], list[Import]]:
    """What a DAG parse loads, and every import statement of the project and the deploy profile."""
    modules, found = imports(REPO, (*PRODUCT_PACKAGES, "deploy"))
    return loaded_with([m for m in modules if m.split(".")[0] in PARSE_ROOTS], found, modules), found


def test_functions_import_project_modules_only_to_keep_them_out_of_a_dag_parse(parse_imports) -> None:
    parse_time, found = parse_imports
    assert {"dags.campaign_feedback_loop", "campaign_loop.pipeline", "campaign_loop.deploy"} <= parse_time
    assert "ml.train" not in parse_time and "expectations.gate" not in parse_time
    needless = needless_function_imports(found, parse_time, LAZY_IMPORTS)
    assert not needless, ("imports inside functions that keep nothing out of a DAG parse (move them to the top of "
                          "their module):\n" + "\n".join(f"    {i.site[0]}:{i.site[1]}  {i.source} -> {i.target}"
                                                          for i in needless))


def test_lazy_import_allowances_are_still_needed(parse_imports) -> None:
    parse_time, found = parse_imports
    still = {i.source for i in needless_function_imports(found, parse_time, ())}
    stale = [m for m in LAZY_IMPORTS if m not in still]
    assert not stale, f"these modules import nothing inside a function any more; delete them from LAZY_IMPORTS: {stale}"


# --- the checks themselves can fail ----------------------------------------------------------------------

def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_function_level_import_is_found_with_its_lines(tmp_path: Path) -> None:
    _write(tmp_path, {
        "base/__init__.py": "",
        "base/settings.py": "def check():\n    from top.faults import parse\n    return parse\n",
        "top/__init__.py": "",
        "top/faults.py": "from base.settings import check\n\ndef parse():\n    return check\n",
        "top/other.py": "from . import faults\nfrom base import settings\n",
    })
    nodes, edges = import_graph(tmp_path, ("base", "top"))

    found = cycles(nodes, edges)

    assert len(found) == 1, found
    assert "cycle of 2 modules: base.settings, top.faults" in found[0]
    assert "base/settings.py:2  base.settings -> top.faults" in found[0]
    assert "top/faults.py:1  top.faults -> base.settings" in found[0]
    # a relative import and a `from package import submodule` resolve to the submodule
    assert ("top.other", "top.faults") in edges and ("top.other", "base.settings") in edges


def test_a_function_import_is_needed_only_in_a_parsed_module_for_a_module_the_parse_skips(tmp_path: Path) -> None:
    _write(tmp_path, {
        "dags/loop.py": "from app import steps\n",
        "app/__init__.py": "",
        "app/steps.py": "from app import light\n\ndef train():\n    from app import heavy, light\n    return heavy, light\n",
        "app/light.py": "",
        "app/heavy.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import report\n"
                        "def run():\n    from app import light\n",
        "app/report.py": "",
    })
    modules, found = imports(tmp_path, ("dags", "app"))

    parse_time = loaded_with(["dags.loop"], found, modules)
    needless = needless_function_imports(found, parse_time, ())

    # heavy stays out of the parse (its type-only import of report runs never); light is loaded at the top anyway
    assert parse_time == {"dags.loop", "app", "app.steps", "app.light"}
    assert [(i.source, i.target, i.site) for i in needless] == [
        ("app.heavy", "app.light", ("app/heavy.py", 5)), ("app.steps", "app.light", ("app/steps.py", 4))]
    assert needless_function_imports(found, parse_time, ["app.heavy", "app.steps"]) == []


def test_tarjan_separates_cycles_from_the_chains_between_them() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]

    components = strongly_connected("abcdefg", edges)

    assert sorted(c for c in components if len(c) > 1) == [["a", "b", "c"], ["d", "e"]]
    assert sorted(sum(components, [])) == list("abcdefg")


def test_an_upward_import_breaks_the_contract_and_an_unlisted_module_has_no_layer() -> None:
    layers = (Layer("low", "", ("pkg.base", "other.*")), Layer("high", "", ("pkg.app", "other.eval")))
    edges = {("pkg.base", "pkg.app"): [("pkg/base.py", 7)], ("pkg.app", "pkg.base"): [("pkg/app.py", 1)],
             ("other.eval", "other.sim"): [("other/eval.py", 3)]}

    upward = upward_imports(edges, layers)

    assert list(upward) == [("pkg.base", "pkg.app")]
    assert "pkg/base.py:7  pkg.base (low) imports pkg.app (high)" in describe(upward, layers)
    assert layer_of("other.sim", layers) == 0 and layer_of("other.eval", layers) == 1
    assert layer_of("pkg.new", layers) is None


def test_function_lengths_count_methods_and_nested_functions_by_their_qualified_names(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(81))
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/long.py": f"def long():\n{body}\n\nclass Plan:\n    async def short(self):\n"
                       "        def inner():\n            return 1\n        return inner\n",
    })

    lengths = function_lengths(tmp_path, ("pkg",))

    assert lengths == {"pkg/long.py:long": 82, "pkg/long.py:Plan.short": 4, "pkg/long.py:Plan.short.inner": 2}


def test_parameters_are_counted_as_a_caller_fills_them(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/calls.py": "def nine(a, b, /, c, d=1, *rest, e, f=2, g, **extra):\n    pass\n\n\n"
                        "class Plan:\n    def method(self, a):\n        def inner(self, b):\n            pass\n\n"
                        "    @classmethod\n    def build(cls, a, b):\n        pass\n\n"
                        "    @staticmethod\n    def free(self):\n        pass\n",
    })

    counts = function_parameters(tmp_path, ("pkg",))

    # self is a parameter only where nothing binds it: a nested function's, a static method's
    assert counts == {"pkg/calls.py:nine": 9, "pkg/calls.py:Plan.method": 1, "pkg/calls.py:Plan.method.inner": 2,
                      "pkg/calls.py:Plan.build": 2, "pkg/calls.py:Plan.free": 1}
