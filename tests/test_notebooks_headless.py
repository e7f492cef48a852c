"""Headless runs (debuglab.notebooks.headless): notebooks executed on a real Jupyter kernel whose prompts (pdb's, input()) are
answered from each cell's stdin script through the kernel's stdin channel.

The kernel here is a real ipykernel running this python (a fake lab whose venv is the
kit's: no nova needed to test the runner); tests/test_labs_pdb.py runs the technique labs
on a real lab's kernel.
"""

from __future__ import annotations

import sys

import nbformat
import pytest
from nbformat import v4

from debuglab.lab.workspace import LAB_TOML, Workspace
from debuglab.notebooks import headless
from debuglab.notebooks.errors import (
    CellFailed,
    CellTimedOut,
    LabRunError,
    ScriptExhausted,
    ScriptLeftOver,
)

PDB_CELL = '''\
import pdb

def double_plus_one(a):
    x = a * 2
    y = x + 1
    return y

r = pdb.runcall(double_plus_one, 20)
print("result:", r)'''


def notebook(*cells) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "debuglab", "display_name": "debuglab", "language": "python"}}
    nb.cells = list(cells)
    return nb


def code(cell_id: str, source: str, stdin: list[str] | None = None, **metadata) -> nbformat.NotebookNode:
    cell = v4.new_code_cell(source)
    cell.id = cell_id
    cell.metadata.update(metadata)
    if stdin is not None:
        headless.set_stdin(cell, stdin)
    return cell


def fake_lab(root) -> Workspace:
    """A folder that opens as a lab whose 'venv' python runs the kit's (with ipykernel, no nova)."""
    python = root / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (root / LAB_TOML).write_text('[lab]\nbugs = []\n')
    return Workspace.open(root)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return fake_lab(tmp_path_factory.mktemp("labrun") / "lab")


def test_a_kernel_that_cannot_start_is_a_clear_error(tmp_path):
    ws = fake_lab(tmp_path / "lab")
    ws.python.write_text("#!/bin/sh\necho no ipykernel here >&2\nexit 1\n")
    with pytest.raises(LabRunError, match=r"notebook: the lab's kernel \(.*/venv/bin/python\) did not start"):
        headless.run(ws, notebook(code("a", "x = 1")), cwd=tmp_path)


def test_pdb_and_input_are_answered_from_each_cells_script(ws, tmp_path):
    nb = notebook(
        code("steps", PDB_CELL, ["n", "n", "p x", "where", "c"]),
        code("asks", 'name = input("your name? ")\nprint("hello", name.upper())', ["ada"]),
        code("oops", "1 / 0", tags=["raises-exception"]),
        code("after", 'import os\nprint("cwd", os.getcwd(), os.environ["DEBUGLAB_X"])'),
    )
    headless.run(ws, nb, cwd=tmp_path, env={"DEBUGLAB_X": "from-env"})
    steps = headless.output(headless.cell(nb, "steps"))
    # each answer shows after its prompt, and what the command printed after the answer
    assert "ipdb> p x\n40\n" in steps, steps
    assert steps.index("ipdb> n") < steps.index("----> 5     y = x + 1") < steps.index("ipdb> p x"), steps
    where = steps.split("ipdb> where")[1].split("ipdb> c")[0]
    assert "(6)double_plus_one()" in where and "----> 6     return y" in where, where
    assert steps.rstrip().endswith("result: 41"), steps
    assert headless.output(headless.cell(nb, "asks")) == "your name? ada\nhello ADA\n"
    assert "ZeroDivisionError" in headless.output(headless.cell(nb, "oops"))
    assert headless.output(headless.cell(nb, "after")) == f"cwd {tmp_path} from-env\n"


def test_a_script_too_short_fails_naming_the_cell_instead_of_hanging(ws, tmp_path):
    nb = notebook(code("ok", "x = 1"), code("short", PDB_CELL, ["n", "n"], debuglab={"timeout": 60}),
                  code("never", 'print("not reached")'))
    headless.set_stdin(nb.cells[1], ["n", "n"])
    with pytest.raises(ScriptExhausted) as err:
        headless.run(ws, nb, cwd=tmp_path)
    message = str(err.value)
    assert err.value.cell_id == "short"
    assert "cell short" in message and "'ipdb> '" in message and "after 2 line(s)" in message, message
    assert "ipdb> <end of the cell's stdin script: EOF>" in err.value.output
    assert headless.cell(nb, "never").outputs == []


def test_input_without_a_script_fails_naming_the_cell(ws, tmp_path):
    nb = notebook(code("asks", 'input("pick a number: ")'))
    with pytest.raises(ScriptExhausted, match=r"cell asks: asked for input at prompt 'pick a number: '"):
        headless.run(ws, nb, cwd=tmp_path)


def test_script_lines_left_unused_fail(ws, tmp_path):
    """A debugger that no longer stops where the notebook says leaves its script unused."""
    nb = notebook(code("nostop", 'print("no breakpoint here")', ["where", "c"]))
    with pytest.raises(ScriptLeftOver, match=r"cell nostop: ended after 0 of the 2 line\(s\).*'where', 'c'"):
        headless.run(ws, nb, cwd=tmp_path)


def test_a_cell_over_its_timeout_fails_naming_it(ws, tmp_path):
    nb = notebook(code("slow", "import time\ntime.sleep(60)", debuglab={"timeout": 2}))
    with pytest.raises(CellTimedOut, match=r"cell slow: did not finish in 2 s"):
        headless.run(ws, nb, cwd=tmp_path)


def test_a_failing_cell_names_itself_and_its_error(ws, tmp_path):
    path = tmp_path / "lab.ipynb"
    nbformat.write(notebook(code("boom", "raise ValueError('flavor 42 not found')")), path)
    with pytest.raises(CellFailed) as err:
        headless.run(ws, path)
    assert str(err.value).startswith(f"{path}, cell boom: raised ValueError: flavor 42 not found")


def test_bad_scripts_and_paths_are_refused_before_a_kernel_starts(ws, tmp_path):
    nb = notebook(code("bad", "x = 1", debuglab={"stdin": "where"}))
    with pytest.raises(LabRunError, match="cell bad: metadata debuglab.stdin must be a list of strings"):
        headless.run(ws, nb, cwd=tmp_path)
    with pytest.raises(LabRunError, match="missing.ipynb: cannot read the notebook"):
        headless.run(ws, tmp_path / "missing.ipynb")


def test_notebook_check_runs_each_notebook_and_fails_on_the_broken_one(ws, tmp_path):
    from click.testing import CliRunner

    from debuglab.cli import main

    good, bad = tmp_path / "02-good.ipynb", tmp_path / "03-bad.ipynb"
    nbformat.write(notebook(code("steps", PDB_CELL, ["n", "p x", "c"])), good)
    nbformat.write(notebook(code("ok", "x = 1"), code("short", PDB_CELL, ["n"])), bad)
    result = CliRunner().invoke(main, ["notebook", "check", "--dir", str(ws.root), str(good), str(bad)])
    assert result.exit_code == 1, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
            for line in result.output.splitlines() if line.startswith("│") and ".ipynb" in line}
    assert rows == {good.name: ["ok", "1"], bad.name: ["ScriptExhausted", "2"]}, result.output
    assert f"{bad}, cell short: asked for input at prompt 'ipdb> '" in result.output

    assert [p.name for p in headless.technique_labs()][:3] == ["01-welcome.ipynb", "02-pdb.ipynb", "03-nova-tests.ipynb"]


def test_a_cell_that_keeps_asking_after_eof_is_stopped(ws, tmp_path, monkeypatch):
    """EOF ends pdb and input(); a program that swallows it and asks again is cut off after
    GRACE seconds, still naming the cell (never a hang)."""
    monkeypatch.setattr(headless, "GRACE", 2.0)
    stubborn = 'while True:\n    try:\n        input("again? ")\n    except EOFError:\n        pass'
    nb = notebook(code("stubborn", stubborn, ["yes"], debuglab={"timeout": 60}))
    headless.set_stdin(nb.cells[0], ["yes"])
    with pytest.raises(ScriptExhausted, match=r"cell stubborn: asked for input at prompt 'again\? ' after 1"):
        headless.run(ws, nb, cwd=tmp_path)
    shown = headless.output(nb.cells[0])
    assert shown.startswith("again? yes\nagain? <end of the cell's stdin script: EOF>\n")
    assert shown.count("<end of the cell's stdin script: EOF>") == 1


def test_a_kernel_that_dies_in_a_cell_names_the_cell(ws, tmp_path):
    nb = notebook(code("dies", "import os\nos._exit(3)"))
    with pytest.raises(CellFailed, match="cell dies: the kernel died"):
        headless.run(ws, nb, cwd=tmp_path)
