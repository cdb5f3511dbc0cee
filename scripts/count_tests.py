#!/usr/bin/python3
"""Counts test cases in meson's JUnit logs (gtest cases and TAP subtests each count once; several
logs, e.g. the release, sanitizer and fuzz runs, are summed) and prints the CI line
`tests: N passed, N failed`. Exit 1 on any failure or no test."""
import sys
import xml.etree.ElementTree as ET


def main(paths):
    passed = failed = 0
    roots = []
    for path in paths:
        try:
            roots.append(ET.parse(path).getroot())
        except (OSError, ET.ParseError) as e:
            print(f"count_tests: cannot read {path}: {e}", file=sys.stderr)
            failed += 1
    for suite in (s for root in roots for s in root.iter("testsuite")):
        cases = suite.findall("testcase")
        for case in cases:
            if case.find("skipped") is not None:
                continue
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            else:
                passed += 1
    print(f"tests: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
