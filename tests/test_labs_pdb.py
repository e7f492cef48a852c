"""The technique labs 2 (pdb) and 3 (nova's tests), executed headless on a real lab's
kernel: their debugger cells are answered from the scripts the notebooks hold, and the
tests assert what the real pdb showed (values, frames, the post-mortem frame). Each
exercise is solved with the commands its lab teaches, and its checker must reject wrong
answers and accept the one found. No cloud: these labs run nova's code in-process.

Set DEBUGLAB_TEST_LAB=/path/to/lab to run against an existing lab.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import pytest

from debuglab.notebooks import headless
from tests._util import ROOT

LAB2 = ROOT / "labs" / "02-pdb.ipynb"
LAB3 = ROOT / "labs" / "03-nova-tests.ipynb"

pytestmark = pytest.mark.slow


def text(nb, cell_id: str) -> str:
    return headless.output(headless.cell(nb, cell_id))


def answered(output: str, command: str) -> str:
    """The first line pdb printed after `command` was typed at its prompt."""
    match = re.search(rf"^(?:ipdb> |\(Pdb\) ){re.escape(command)}\n(.*)$", output, re.MULTILINE)
    assert match, f"{command!r} was not answered in:\n{output}"
    return match.group(1)


def frames(output: str) -> list[str]:
    """The functions pdb stopped in, in order (its `> file(line)function()` lines)."""
    return re.findall(r"^> \S+\(\d+\)(\w+|<module>)\(\)", output, re.MULTILINE)


def subset(path: Path, ids: list[str], answer: str | None = None, stdin: dict[str, list[str]] | None = None):
    """The notebook's cells `ids` in order; `answer` replaces the answer cell's source (the cell
    may be listed again as `answer@2` / `check@2` to check a second answer in the same kernel)."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for wanted in ids:
        base, _, copy_no = wanted.partition("@")
        cell = copy.deepcopy(headless.cell(nb, base))
        if copy_no:
            cell.id = f"{cell.id}-{copy_no}"
        cells.append(cell)
    nb.cells = cells
    for cell_id, lines in (stdin or {}).items():
        headless.set_stdin(headless.cell(nb, cell_id), lines)
    return nb


def with_answers(nb, *answers: str):
    """Set the answer cells (in order) to `answers`."""
    cells = [c for c in nb.cells if "answer" in c.metadata.get("tags", [])]
    assert len(cells) == len(answers)
    for cell, source in zip(cells, answers):
        cell.source = source
    return nb


def checks(nb) -> list[str]:
    return [headless.output(c).strip() for c in nb.cells if "check" in c.metadata.get("tags", [])]


def line_of(path: Path, code: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == code)


@pytest.fixture(scope="module")
def ws(lab_under_test):
    return lab_under_test


# --------------------------------------------------------------------------- lab 2: pdb


@pytest.fixture(scope="module")
def lab2(ws):
    return headless.run(ws, LAB2)


def test_pdb_lab_stops_steps_and_prints_what_it_says(lab2, ws):
    nova = ws.checkout("nova")
    assert f"nova code from: {nova}/nova/virt/hardware.py" in text(lab2, "pdb-setup")
    hook = text(lab2, "pdb-hook")
    assert "breakpoint() calls: debugpy" in hook and "now: sys.breakpointhook" in hook, hook

    first = text(lab2, "pdb-first")
    assert frames(first)[0] == "pinned_cpus" and answered(first, "p spec") == "'0-5,^2,7'", first
    assert first.rstrip().endswith("pinned: [0, 1, 3, 4, 5, 7]"), first

    step = text(lab2, "pdb-step")
    assert frames(step) == ["pinned_cpus", "parse_cpu_spec", "parse_cpu_spec", "parse_cpu_spec",
                            "parse_cpu_spec", "pinned_cpus"], step
    assert answered(step, "s") == "--Call--" and answered(step, "r") == "--Return--", step
    assert "--Return--\n{0, 1, 3, 4, 5, 7}\n" in step and answered(step, "p cpus") == "{0, 1, 3, 4, 5, 7}", step


def test_pdb_lab_until_display_and_its_line_numbers_agree_with_the_checkout(lab2, ws):
    hardware = ws.checkout("nova") / "nova" / "virt" / "hardware.py"
    subtract = line_of(hardware, "cpuset_ids -= cpuset_reject_ids")
    assert text(lab2, "pdb-lines").strip() == f"{subtract}:    cpuset_ids -= cpuset_reject_ids"
    loop = text(lab2, "pdb-loop")
    assert f"ipdb> until {subtract}\n> {hardware}({subtract})parse_cpu_spec()" in loop, loop
    assert "display rule: '0-5'" in loop and "display rule: '7'  [old: '0-5']" in loop, loop
    assert answered(loop, "p cpuset_ids, cpuset_reject_ids") == "({0, 1, 2, 3, 4, 5, 7}, {2})"
    tbreak = text(lab2, "pdb-tbreak")
    assert f"Deleted breakpoint 3 at {hardware}:{subtract}\n> {hardware}({subtract})parse_cpu_spec()" in tbreak
    assert answered(tbreak, "pp cpuset_ids, cpuset_reject_ids") == "({0, 1, 2, 3, 4, 5, 7}, {2})"


def test_pdb_lab_walks_the_scheduler_filter_stack(lab2, ws):
    ops = ws.checkout("nova") / "nova" / "scheduler" / "filters" / "extra_specs_ops.py"
    assert text(lab2, "pdb-filter").strip() == "compute1 passes: True"
    where = text(lab2, "pdb-where")
    assert answered(where, f"b nova/scheduler/filters/extra_specs_ops.py:{line_of(ops, 'words = req.split()')}") \
        .startswith(f"Breakpoint 1 at {ops}:")
    stack = where.split("ipdb> where\n")[1].split("ipdb> ")[0]
    assert re.findall(r"\(\d+\)(\w+)\(\)", stack) == ["host_passes", "_satisfies_extra_specs", "match"], stack
    assert answered(where, "p value, req") == "('QEMU', 's== QEMU')"
    assert answered(where, "p key") == "'capabilities:hypervisor_type'"
    assert answered(where, "p spec_obj.flavor.name") == "'dl.small'"
    assert answered(where, "p scope") == "['hypervisor_type']"
    assert frames(where) == ["host_passes", "match", "match", "_satisfies_extra_specs", "host_passes",
                             "_satisfies_extra_specs"], where
    assert "Clear all breaks? y\nDeleted breakpoint 1" in where and where.rstrip().endswith("True"), where

    cond = text(lab2, "pdb-cond")  # three extra specs, two compared: it stops only at the <or> one
    assert frames(cond) == ["host_passes", "match"], cond
    assert answered(cond, "p value, words") == "('x86_64', ['x86_64', '<or>', 'aarch64'])"


def test_pdb_lab_post_mortem_opens_the_frame_that_raised(lab2, ws):
    hardware = ws.checkout("nova") / "nova" / "virt" / "hardware.py"
    assert "Invalid: Invalid exclusion expression '^x'" in text(lab2, "pdb-crash")
    debug = text(lab2, "pdb-debug")
    assert debug.startswith(f"> {hardware}(") and frames(debug)[0] == "parse_cpu_spec", debug
    where = debug.split("ipdb> where\n")[1].split("ipdb> ")[0]
    assert 0 <= where.find('hardware.parse_cpu_spec("0-3,^x,7")') < where.find(f"> {hardware}("), where
    assert answered(debug, "p rule") == "'^x'" and answered(debug, "p cpuset_ids") == "{0, 1, 2, 3}"
    pm = text(lab2, "pdb-pm")
    assert pm.startswith(f"> {hardware}(") and frames(pm) == ["parse_cpu_spec"], pm
    assert answered(pm, "p spec") == "'0-3,^x,7'"
    post = text(lab2, "pdb-postmortem")
    assert post.startswith("caught: Invalid range expression '9-4'") and frames(post) == ["parse_cpu_spec"]
    assert answered(post, "p rule, start, end") == "('9-4', 9, 4)"


def test_pdb_lab_pythonbreakpoint_and_the_terminal_pdb(lab2):
    assert text(lab2, "pdb-env") == "pinned: [0, 1, 3, 4, 5, 7]\n"  # no prompt: the script had none to give
    terminal = text(lab2, "pdb-terminal")
    assert terminal.count("(Pdb) ") == 4 and "(Pdb) '1-3'\n" in terminal and "(Pdb) {1, 2, 3}\n" in terminal
    assert terminal.count("pinned: [1, 2, 3]") == 2, terminal  # with pdb, then with PYTHONBREAKPOINT=0


def test_pdb_exercise_is_solved_with_a_conditional_breakpoint_and_checked(lab2, ws):
    assert text(lab2, "pdb-exercise-setup").strip() == "compute2 passes: False"
    assert checks(lab2) == ["✗ no answer yet: fill in KEY and VALUE above"]
    ops = ws.checkout("nova") / "nova" / "scheduler" / "filters" / "extra_specs_ops.py"
    compare = line_of(ops, "return method(value, words[0])")
    setup = ["pdb-setup", "pdb-hook", "pdb-filter", "pdb-exercise-setup"]
    solving = [f"b nova/scheduler/filters/extra_specs_ops.py:{compare}, not method(value, words[0])", "c",
               "p value", "up", "p key", "clear", "y", "c"]
    solved = headless.run(ws, subset(LAB2, setup + ["pdb-exercise"], stdin={"pdb-exercise": solving}),
                        cwd=LAB2.parent)
    session = text(solved, "pdb-exercise")
    value, key = ast.literal_eval(answered(session, "p value")), ast.literal_eval(answered(session, "p key"))
    assert session.rstrip().endswith("False"), session

    nb = with_answers(subset(LAB2, setup + ["pdb-answer", "pdb-check"] + ["pdb-answer@2", "pdb-check@2"]
                             + ["pdb-answer@3", "pdb-check@3"] + ["pdb-answer@4", "pdb-check@4"]),
                      'KEY = "hw:maxphysaddr_bits"\nVALUE = "43"',  # the flavor's name for it
                      'KEY = "capabilities:cpu_info:topology:cores"\nVALUE = "8"',  # compared, and matched
                      f'KEY = {key!r}\nVALUE = "46"',
                      f'KEY = {key!r}\nVALUE = {value!r}')
    headless.run(ws, nb, cwd=LAB2.parent)
    wrong_name, matched, wrong_value, right = checks(nb)
    assert wrong_name.startswith("✗ the filter never compared a key named 'hw:maxphysaddr_bits'"), wrong_name
    assert matched.startswith("✗ 'capabilities:cpu_info:topology:cores' was compared, and the host matched it")
    assert wrong_value.startswith("✗ right key; but the host value compared there was not '46'"), wrong_value
    assert right == f"✓ right: the filter compared {key!r} and the host's {value} did not match.", right
    assert (key, value) == ("capabilities:cpu_info:maxphysaddr:bits", "43")  # what the story of dl.big says


# --------------------------------------------------------------------------- lab 3: nova's tests


MODULE = "nova.tests.unit.scheduler.filters.test_compute_capabilities_filters"


@pytest.fixture(scope="module")
def lab3(ws):
    return headless.run(ws, LAB3)


def test_tests_lab_finds_and_runs_a_module_and_one_test(lab3, ws):
    nova = ws.checkout("nova")
    assert text(lab3, "tests-find").splitlines() == [
        "[PosixPath('nova/tests/unit/scheduler/filters/test_compute_capabilities_filters.py')]",
        "[PosixPath('nova/tests/unit/scheduler/filters/test_extra_specs_ops.py')]"]
    assert f"{nova}/nova/tests/unit/scheduler/filters/test_compute_capabilities_filters.py" in \
        text(lab3, "tests-grep").splitlines()
    tests = (nova / "nova/tests/unit/scheduler/filters/test_compute_capabilities_filters.py").read_text() \
        .count("    def test_")
    stestr = text(lab3, "tests-stestr")
    assert f"Ran: {tests} tests in" in stestr and f" - Passed: {tests}\n" in stestr and " - Failed: 0\n" in stestr
    assert stestr.count(f"{MODULE}.TestComputeCapabilitiesFilter.test_") == tests
    one = text(lab3, "tests-testtools")
    assert "Ran 1 test in" in one and one.rstrip().endswith("OK"), one


def test_tests_lab_stops_in_a_test_and_walks_up_into_it(lab3, ws):
    session = text(lab3, "tests-pdb")
    test_id = f"{MODULE}.TestComputeCapabilitiesFilter.test_compute_filter_pass_cpu_info_as_text_type"
    assert frames(session) == ["<module>", "match", "_satisfies_extra_specs", "host_passes",
                               "_do_test_compute_filter_extra_specs",
                               "test_compute_filter_pass_cpu_info_as_text_type", "<module>"], session
    assert answered(session, "p value, req") == "('Intel', 'Intel')"
    assert answered(session, "p host_state").startswith("{'free_ram_mb': 1024, 'cpu_info': ")
    assert answered(session, "p self.id()") == repr(test_id)
    assert "Ran 1 test in" in session and "\nOK\n" in session and session.rstrip().endswith("[exit status 0]")


def test_tests_lab_reads_a_failure_from_stestr_and_subunit(lab3):
    failing = "test_versions.VersionSpecTestCase.test_hypervisor_version_10_is_at_least_9"
    run = text(lab3, "tests-fail")
    assert re.search(rf"{re.escape(failing)} \[[\d.]+s\] \.\.\. FAILED", run), run
    assert "AssertionError: False is not true" in run and " - Failed: 1\n" in run and " - Passed: 1\n" in run
    last = text(lab3, "tests-last").splitlines()
    assert last[0] == failing  # stestr failing --list
    assert sorted(last[2:4]) == [failing, "test_versions.VersionSpecTestCase.test_or_matches_the_second_choice"]
    assert "AssertionError: False is not true" in last and last[-1] == "FAILED (failures=1)"  # subunit2pyunit


def test_tests_exercise_is_solved_under_pdb_and_checked(lab3, ws):
    assert checks(lab3) == ["✗ no answer yet: fill in VALUE and CALLER above"]
    ops = ws.checkout("nova") / "nova" / "scheduler" / "filters" / "extra_specs_ops.py"
    setup = ["tests-setup", "tests-talk"]
    solving = [f"b nova/scheduler/filters/extra_specs_ops.py:{line_of(ops, 'words = req.split()')}", "c",
               "p value", "up", "up", "up", "c", "q"]
    solved = headless.run(ws, subset(LAB3, setup + ["tests-exercise"], stdin={"tests-exercise": solving}),
                        cwd=LAB3.parent)
    session = text(solved, "tests-exercise")
    value, caller = ast.literal_eval(answered(session, "p value")), frames(session)[-2]

    nb = with_answers(subset(LAB3, setup + ["tests-answer", "tests-check", "tests-answer@2", "tests-check@2",
                                            "tests-answer@3", "tests-check@3"]),
                      f'VALUE = "20"\nCALLER = {caller!r}',  # the flavor's number, not the host's
                      f'VALUE = {value!r}\nCALLER = "test_compute_filter_pass_cpu_with_backward_compatibility"',
                      f'VALUE = {value!r}\nCALLER = {caller!r}')
    headless.run(ws, nb, cwd=LAB3.parent)
    wrong_value, wrong_caller, right = checks(nb)
    assert wrong_value.startswith("✗ match() did not receive '20' as value"), wrong_value
    assert wrong_caller.startswith("✗ right value; but 'test_compute_filter_pass_cpu_with_backward_compatibility' "
                                   "is not the function that called host_passes"), wrong_caller
    assert right == f"✓ right: {caller} called host_passes, and match() compared {value!r} with '<= 20'.", right
    assert (value, caller) == ("0", "_do_test_compute_filter_extra_specs")
