"""The project's modules import one another one way: the import graph, read from the source with ``ast`` (imports
inside functions included), has no cycle, and no library module imports a command."""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Scripts run by users; the pipeline's modules never import them (benchmarks and tests may).
COMMANDS = {'seld', 'predict', 'batch_feature_extraction', 'synthesize_dataset', 'evaluation_metrics'}


def project_modules() -> dict[str, str]:
    """Module name -> file, for the top-level modules and the packages beside them."""
    out = {}
    for dirpath, dirnames, files in os.walk(ROOT):
        rel = os.path.relpath(dirpath, ROOT)
        parts = [] if rel == '.' else rel.split(os.sep)
        if parts and (parts[0] in ('tests', 'benchmarks', 'docs', 'data', 'runs') or parts[0].startswith('.')
                      or not os.path.exists(os.path.join(dirpath, '__init__.py'))):
            dirnames[:] = []
            continue
        for f in files:
            if f.endswith('.py'):
                name = '.'.join(parts + ([] if f == '__init__.py' else [f[:-3]]))
                out[name] = os.path.join(dirpath, f)
    return out


def imports_of(path: str, name: str, modules: dict[str, str]) -> set[str]:
    """The project modules that the file imports, anywhere in it."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                up = package.split('.')[:len(package.split('.')) - node.level + 1] if package else []
                base = '.'.join([p for p in up if p] + ([base] if base else []))
            targets = [base] + [f'{base}.{a.name}' for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition('.')[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in sorted(graph):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_find_cycle_finds_a_planted_cycle_and_accepts_a_dag():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


def test_imports_run_one_way():
    graph = import_graph()
    assert {'seld', 'parameter', 'utils', 'cls_feature_class'} <= set(graph)  # the walk found the project
    assert find_cycle(graph) is None, f'import cycle: {" -> ".join(find_cycle(graph))}'


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_no_module_imports_a_command(command):
    importers = sorted(m for m, deps in import_graph().items() if command in deps and m not in COMMANDS)
    assert importers == [], f'{importers} import the command {command}'
