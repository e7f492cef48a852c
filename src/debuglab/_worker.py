"""Runs a list of test ids in the lab venv and writes a subunit v2 stream to a file.

This file runs under the LAB's Python (nova importable), not debuglab's: it uses only
the standard library, testtools and python-subunit. nova's test base is imported once
for all the ids. An id that cannot be found or imported is reported as failed, with why.
"""

import argparse
import importlib
import importlib.util
import sys
import traceback
import unittest


def find_module(test_id):
    """The longest importable module name that test_id starts with (an id that is a
    module's name selects all of that module's tests)."""
    parts = test_id.split("(")[0].split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except (ImportError, AttributeError, ValueError):
            continue
    return None


def isolate_path(tree, site_dirs):
    """The grader's sandbox runs this under `python -S`: no sitecustomize or usercustomize
    is imported, and after the venv's own .pth files are read, every path outside the
    venv's site dirs and the base Python is dropped (an editable install's link to a
    student's checkout included)."""
    import os
    import site

    for site_dir in site_dirs:
        site.addsitedir(site_dir)
    roots = [os.path.realpath(p) for p in (tree, *site_dirs, sys.base_prefix, sys.base_exec_prefix)]

    def allowed(entry):
        real = os.path.realpath(entry or ".")
        return any(real == root or real.startswith(root + os.sep) for root in roots)

    sys.path[:] = [entry for entry in sys.path if entry and allowed(entry)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", required=True, help="the checkout whose code and tests run")
    parser.add_argument("--ids", required=True, help="a file with one test id a line")
    parser.add_argument("--out", required=True, help="where the subunit v2 stream goes")
    parser.add_argument("--site-packages", action="append", default=[],
                        help="(with python -S) site dirs to add; then sys.path keeps only the "
                             "tree, these dirs and the base Python's own")
    args = parser.parse_args()
    if args.site_packages:
        isolate_path(args.tree, args.site_packages)
    sys.path.insert(0, args.tree)

    from subunit import StreamResultToBytes
    from testtools import ExtendedToStreamDecorator, iterate_tests

    with open(args.ids) as fh:
        wanted = [line.strip() for line in fh if line.strip()]
    with open(args.out, "wb") as out:
        stream = StreamResultToBytes(out)

        def report_error(test_id, text):
            stream.status(test_id=test_id, test_status="fail", file_name="traceback",
                          file_bytes=text.encode(), mime_type="text/plain; charset=utf8", eof=True)
            out.flush()

        by_module = {}
        for test_id in wanted:
            by_module.setdefault(find_module(test_id), []).append(test_id)
        loader = unittest.TestLoader()
        selected, selected_ids = [], set()
        for module_name, ids in by_module.items():
            if module_name is None:
                for test_id in ids:
                    report_error(test_id, "no importable module in this test id\n")
                continue
            try:
                module = importlib.import_module(module_name)
                tests = list(iterate_tests(loader.loadTestsFromModule(module)))
            except Exception:
                text = traceback.format_exc()
                for test_id in ids:
                    report_error(test_id, f"cannot load {module_name}:\n{text}")
                continue
            for test_id in ids:
                # a scenario test may expand only when it runs (testscenarios.WithScenarios)
                match = [t for t in tests if t.id() == test_id or test_id.startswith(t.id() + "(")
                         or test_id == module_name]
                if not match:
                    report_error(test_id, f"no such test in {module_name}\n")
                for test in match:
                    if test.id() not in selected_ids:
                        selected_ids.add(test.id())
                        selected.append(test)

        result = ExtendedToStreamDecorator(stream)
        result.startTestRun()
        try:
            for test in selected:
                test.run(result)
                out.flush()
        finally:
            result.stopTestRun()
            out.flush()


if __name__ == "__main__":
    main()
