#!/usr/bin/env python3
"""Results of a make conformance run (hack/conformance.sh): ginkgo's JSON report of the run plus the dry-run of the
selection and e2e/conformance/selection.json's notApplicable list, into one results file (JSON: spec, state,
duration, failure message; not-applicable specs with their reason) and a short Markdown table.

usage: conformance-report.py SELECTION NOT_APPLICABLE_JSON NOT_SELECTED_JSON DRYRUN_JSON REPORT_JSON OUT_JSON OUT_MD META_JSON
NOT_APPLICABLE_JSON: the entries of the selection's notApplicable that apply on this machine; NOT_SELECTED_JSON: the
notSelected entries left out of this run (hack/conformance.sh).
Prints the summary line `Specs: N passed, N failed, N not applicable` (what .ci/run adds up). Exits 1 when a
selected spec failed or did not run, or a notApplicable entry names no selected spec (the list went stale)."""
import json
import sys


def spec_name(r):
    return " ".join([t for t in r.get("ContainerHierarchyTexts") or [] if t] + [r.get("LeafNodeText", "")]).strip()


def its(report_path):
    """The It specs of a ginkgo JSON report (a list of suite reports), by full name."""
    out = {}
    with open(report_path) as f:
        suites = json.load(f)
    for suite in suites:
        for r in suite.get("SpecReports") or []:
            if r.get("LeafNodeType") == "It":
                out[spec_name(r)] = r
    return out


def clip(msg, limit):
    msg = (msg or "").strip()
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def first_line(msg, limit=300):
    return clip((msg or "").strip().split("\n", 1)[0], limit)


def main(selection_path, na_path, ns_path, dry_path, report_path, out_json, out_md, meta_path):
    with open(selection_path) as f:
        sel = json.load(f)
    with open(na_path) as f:
        applies = json.load(f)
    with open(ns_path) as f:
        left_out = {e["spec"]: e["reason"] for e in json.load(f)}
    with open(meta_path) as f:
        meta = json.load(f)
    na = {e["spec"]: e["reason"] for e in applies}
    dry = {n: r for n, r in its(dry_path).items() if r.get("State") != "skipped"}
    ran = its(report_path)
    problems = [
        f"{key} names no spec the focus selects (stale entry?): {e['spec']}"
        for key in ("notApplicable", "notSelected")
        for e in sel.get(key, [])
        if e["spec"] not in dry
    ]
    not_selected = [{"spec": n, "reason": r} for n, r in sorted(left_out.items())]
    dry = {n: r for n, r in dry.items() if n not in left_out}
    specs = []
    for name in sorted(dry):
        if name in na:
            specs.append({"spec": name, "state": "not applicable", "reason": na[name]})
            continue
        r = ran.get(name)
        if r is None or r.get("State") == "skipped":
            specs.append({"spec": name, "state": "not run", "failure": "selected but not run (the run was cut short?)"})
            continue
        state = r.get("State", "unknown")
        entry = {"spec": name, "state": state, "durationSeconds": round((r.get("RunTime") or 0) / 1e9, 1)}
        if state != "passed":
            fail = r.get("Failure") or {}
            entry["failure"] = clip(fail.get("Message"), 4000)
            loc = fail.get("Location") or {}
            if loc.get("FileName"):
                entry["at"] = f'{loc["FileName"].split("k8s.io/kubernetes@")[-1]}:{loc.get("LineNumber")}'
        specs.append(entry)
    count = lambda st: sum(1 for s in specs if s["state"] == st)
    summary = {
        "selected": len(specs),
        "passed": count("passed"),
        "failed": sum(1 for s in specs if s["state"] not in ("passed", "not applicable")),
        "notApplicable": count("not applicable"),
    }
    result = {
        **meta,
        "selection": {"focus": sel["focus"], "skip": sel["skip"]},
        "summary": summary,
        "specs": specs,
        "notSelected": not_selected,
    }
    with open(out_json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    durations = sorted(s["durationSeconds"] for s in specs if "durationSeconds" in s)
    median = durations[len(durations) // 2] if durations else 0
    lines = [
        f"Kubernetes {meta['kubernetes']} e2e, `{' | '.join(sel['focus'])}` without `{' | '.join(sel['skip'])}`,"
        f" against edge node {meta['node']} ({meta['procs']} parallel processes), {meta['started']}:",
        "",
        "| selected | passed | failed | not applicable | run time | median spec |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary['selected']} | {summary['passed']} | {summary['failed']} | {summary['notApplicable']} |"
        f" {meta['durationSeconds']} s | {median} s |",
        "",
    ]
    if summary["notApplicable"]:
        lines += ["Not applicable:", ""] + [f"- {s['spec']}: {s['reason']}" for s in specs if s["state"] == "not applicable"] + [""]
    if not_selected:
        lines += ["Left out of the selection for time:", ""] + [f"- {s['spec']}: {s['reason']}" for s in not_selected] + [""]
    bad = [s for s in specs if s["state"] not in ("passed", "not applicable")]
    if bad:
        lines += ["Failed:", ""] + [f"- {s['spec']} ({s['state']}): {first_line(s.get('failure'))}" for s in bad] + [""]
    with open(out_md, "w") as f:
        f.write("\n".join(lines))
    for p in problems:
        print("error: " + p, file=sys.stderr)
    print(f"Specs: {summary['passed']} passed, {summary['failed']} failed, {summary['notApplicable']} not applicable")
    return 1 if bad or problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 9:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
