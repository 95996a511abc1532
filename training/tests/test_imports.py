"""No import circles inside rebeca_train (the TypeScript side is checked by `pnpm lint`)."""
import ast
import os
import unittest

PKG = os.path.join(os.path.dirname(__file__), "..", "rebeca_train")


def local_imports(path):
    """Modules of this package that `path` imports, at the top or inside functions (a deferred
    import that would be circular at the top is still a circle in the design)."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def import_graph(pkg_dir):
    mods = {f[:-3] for f in os.listdir(pkg_dir) if f.endswith(".py")}
    return {m: local_imports(os.path.join(pkg_dir, m + ".py")) & mods for m in mods}


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or None."""
    state = {}
    stack = []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


class ImportCircles(unittest.TestCase):
    def test_finds_a_planted_cycle(self):
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}))

    def test_rebeca_train_has_none(self):
        graph = import_graph(PKG)
        self.assertIn("manifest", graph["export"])
        self.assertIsNone(find_cycle(graph))


if __name__ == "__main__":
    unittest.main()
