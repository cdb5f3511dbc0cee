#!/usr/bin/python3
"""Runs one unittest module (given by path) and reports every test case as TAP for meson.

usage: run_unittest.py path/to/some_test.py [unittest name filter ...]

Prints `1..N`, then `ok K - name` / `not ok K - name` per case (skips as `ok K - name # SKIP why`),
with failure tracebacks as `#` diagnostics. A case marked @unittest.expectedFailure (a known bug
kept as a reproducer) that fails is `not ok K - name # TODO known bug`, which meson counts as an
expected failure; if it passes it is `not ok` (the bug is fixed: drop the decorator).
Exit status 0 when every case passed or failed as expected.
"""
import importlib.util
import os
import sys
import unittest


def load_module(path):
    path = os.path.abspath(path)
    sys.path.insert(0, os.path.dirname(path))  # sibling helpers (gwharness.py)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def diag(text):
    for line in text.rstrip().splitlines():
        print("# " + line)


class TapResult(unittest.TestResult):
    """Prints one TAP line when each test ends."""

    def __init__(self):
        super().__init__()
        self.number = 0
        self.bad = 0
        self._problems = []
        self._skip = None
        self._xfail = None

    def startTest(self, test):
        super().startTest(test)
        self._problems = []
        self._skip = None
        self._xfail = None

    def _problem(self, test, err, kind):
        self._problems.append((kind, self._exc_info_to_string(err, test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem(test, err, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._problem(test, err, "ERROR")
        else:  # class or module fixture failed: report it as its own failing line
            self.number += 1
            self.bad += 1
            print(f"not ok {self.number} - {test}", flush=True)
            diag(self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._problems.append((f"{kind} {subtest._subDescription()}", self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._skip = reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._xfail = self._exc_info_to_string(err, test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._problems.append(("UNEXPECTED SUCCESS", "the known bug looks fixed: remove @unittest.expectedFailure"))

    def stopTest(self, test):
        super().stopTest(test)
        self.number += 1
        name = test.id().split(".", 1)[-1]
        if self._problems:
            self.bad += 1
            print(f"not ok {self.number} - {name}", flush=True)
            for kind, text in self._problems:
                diag(f"{kind}\n{text}")
        elif self._xfail is not None:
            print(f"not ok {self.number} - {name} # TODO known bug", flush=True)
            diag(self._xfail)
        elif self._skip is not None:
            print(f"ok {self.number} - {name} # SKIP {self._skip}", flush=True)
        else:
            print(f"ok {self.number} - {name}", flush=True)


def main(argv):
    if len(argv) < 2:
        print("usage: run_unittest.py MODULE.py [NAME_FILTER ...]", file=sys.stderr)
        return 2
    module = load_module(argv[1])
    loader = unittest.TestLoader()
    if len(argv) > 2:
        loader.testNamePatterns = [f"*{p}*" for p in argv[2:]]
    suite = loader.loadTestsFromModule(module)
    cases = list(flatten(suite))
    print(f"1..{len(cases)}", flush=True)
    result = TapResult()
    unittest.TestSuite(cases).run(result)
    return 0 if result.bad == 0 and result.number == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
