"""The README's tour runs as written, and what it shows in comments is what it prints."""

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_blocks_run_and_match_their_shown_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks()
    assert blocks, "README has no python blocks"
    namespace: dict = {}
    for block in blocks:
        lines = block.splitlines()
        tree = ast.parse(block)
        for node in tree.body:
            code = ast.get_source_segment(block, node)
            # the comment lines right after an expression statement show its value
            shown = []
            for line in lines[node.end_lineno :]:
                if line.startswith("# "):
                    shown.append(line[2:])
                else:
                    break
            prints = (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "print"
            )
            if (isinstance(node, ast.For) or prints) and shown:
                capsys.readouterr()
                exec(compile(ast.Module([node], []), "README", "exec"), namespace)
                assert capsys.readouterr().out.splitlines() == shown, code
            elif isinstance(node, ast.Expr) and shown:
                value = eval(compile(ast.Expression(node.value), "README", "eval"), namespace)
                assert repr(value) == "\n".join(shown), code
            else:
                exec(compile(ast.Module([node], []), "README", "exec"), namespace)
