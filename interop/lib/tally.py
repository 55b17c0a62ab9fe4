#!/usr/bin/env python3
"""Tally the JUnit XML reports of one interop suite.

Prints a single line on stdout:  "<passed> <failed> <status line>"
where <failed> counts unexpected failures only (plus one if the suite's runner
failed without reporting any failing test), and the status line is what
interop/run shows for the suite, e.g.

    suite python: PASS (18 passed) in 4s
    suite node: FAIL (10 passed, 2 failed, 1 expected failure) in 7s

Details (names of failing tests, expected failures, unexpected passes) go to
stderr, which interop/run appends to the suite's log.

Test ids used for expected failures: a test matches an entry of
expected-failures.txt when the glob matches any of
    <name>, <classname>::<name>, <suite path>/<name>
where <suite path> is the chain of enclosing <testsuite> names joined by '/'
(node's describe blocks) and <classname> is the JUnit classname (pytest's
dotted module/class path).
"""

import argparse
import fnmatch
import glob
import os
import sys
import xml.etree.ElementTree as ET


def load_patterns(path):
    patterns = []
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.split("#", 1)[0].strip()
                if line:
                    patterns.append(line)
    return patterns


def walk(elem, suites, out):
    for child in elem:
        if child.tag == "testsuite":
            walk(child, suites + [child.get("name", "")], out)
        elif child.tag == "testcase":
            out.append((suites, child))
        else:
            walk(child, suites, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", required=True)
    ap.add_argument("--runner-rc", type=int, default=0)
    ap.add_argument("--elapsed", default="0")
    ap.add_argument("--expected-failures")
    ap.add_argument("results_dir")
    args = ap.parse_args()

    patterns = load_patterns(args.expected_failures)
    reports = sorted(glob.glob(os.path.join(args.results_dir, "**", "*.xml"), recursive=True))
    unreadable = []
    results, order = {}, []
    for report in reports:
        try:
            root = ET.parse(report).getroot()
        except ET.ParseError as e:
            unreadable.append(f"{report}: {e}")
            continue
        cases = []
        if root.tag == "testcase":
            cases.append(([], root))
        else:
            walk(root, [root.get("name", "")] if root.tag == "testsuite" else [], cases)
        for suites, case in cases:
            name = case.get("name", "")
            classname = case.get("classname", "")
            path = "/".join(s for s in suites if s and s != "pytest")
            ids = [name]
            if classname and classname != "test":  # node's junit reporter always says "test"
                ids.append(f"{classname}::{name}")
            if path:
                ids.append(f"{path}/{name}")
            key = (report, tuple(ids))
            if case.find("skipped") is not None:
                outcome = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            else:
                outcome = "passed"
            # One test can appear twice (pytest: a failure in the test and an
            # error in its teardown); it counts once, failed if either failed.
            if key not in results:
                order.append(key)
                results[key] = outcome
            elif outcome == "failed" or results[key] == "skipped":
                results[key] = outcome

    passed = failed = skipped = 0
    xfailed, xpassed, failures = [], [], []
    for key in order:
        ids = key[1]
        shown = ids[-1]
        expected = any(fnmatch.fnmatchcase(i, p) for i in ids for p in patterns)
        outcome = results[key]
        if outcome == "skipped":
            skipped += 1
        elif outcome == "failed":
            if expected:
                xfailed.append(shown)
            else:
                failed += 1
                failures.append(shown)
        else:
            passed += 1
            if expected:
                xpassed.append(shown)

    status = "PASS"
    note = ""
    if unreadable:
        failed += len(unreadable)
        note = "; unreadable report"
    if not reports or passed + failed + skipped + len(xfailed) == 0:
        failed += 1
        status = "ERROR"
        note = f"; no test results (runner exit code {args.runner_rc})"
    elif args.runner_rc != 0 and failed == 0 and not xfailed:
        failed += 1
        status = "ERROR"
        note = f"; runner exited with code {args.runner_rc} but no test failed"
    elif failed:
        status = "FAIL"

    counts = [f"{passed} passed"]
    if failed:
        counts.append(f"{failed} failed")
    if xfailed:
        counts.append(f"{len(xfailed)} expected failure{'s' if len(xfailed) != 1 else ''}")
    if xpassed:
        counts.append(f"{len(xpassed)} unexpectedly passed")
    if skipped:
        counts.append(f"{skipped} skipped")
    line = f"suite {args.suite}: {status} ({', '.join(counts)}{note}) in {args.elapsed}s"

    for f in failures:
        print(f"[{args.suite}] FAILED {f}", file=sys.stderr)
    for f in xfailed:
        print(f"[{args.suite}] expected failure {f}", file=sys.stderr)
    for f in xpassed:
        print(f"[{args.suite}] unexpectedly passed {f} (remove it from expected-failures.txt)", file=sys.stderr)
    for u in unreadable:
        print(f"[{args.suite}] unreadable report {u}", file=sys.stderr)
    print(passed, failed, line)


if __name__ == "__main__":
    main()
