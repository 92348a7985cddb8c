"""``hearth license MODEL`` (what a model's license allows) and ``hearth license audit``
(every installed model against the license policy)."""

from __future__ import annotations

import argparse
import sys


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "license",
        help="show a model's license terms, or audit installed models ('license audit')",
        description="'hearth license MODEL' summarises the license of an installed model, a "
        "catalog model or a license id (e.g. apache-2.0, llama3.1). 'hearth license audit' "
        "checks every installed model against HEARTH_LICENSE_POLICY (and, with --commercial, "
        "that its license allows commercial use) and exits 1 on a violation. A model actually "
        "called 'audit' is 'audit:latest'.",
    )
    parser.add_argument("model", help="MODEL, a license id, or 'audit'")
    parser.add_argument("--commercial", action="store_true",
                        help="audit: every license must allow commercial use")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.model == "audit":
        return handle_audit(args)
    if args.commercial:
        from hearth.errors import InvalidRequest

        raise InvalidRequest("--commercial belongs to 'hearth license audit'")
    return handle_show(args)


def _policy_line() -> tuple[str, bool]:
    """(text, ok) about the current license policy; ok is False when it cannot be read."""
    from hearth.errors import LicensePolicyError
    from hearth.runtime import Runtime

    try:
        policy = Runtime().license_policy()
    except LicensePolicyError as exc:
        return exc.message, False
    return ("" if policy is None else policy.path), True


def handle_show(args: argparse.Namespace) -> int:
    import json

    from rich.markup import escape

    from hearth.cli.output import stdout_console
    from hearth.errors import LicensePolicyError
    from hearth.runtime import Runtime
    from hearth.runtime.facts import badge

    runtime = Runtime()
    described = runtime.describe_license(args.model)
    summary = described["license"]
    verdict = None
    try:
        policy = runtime.license_policy()
    except LicensePolicyError as exc:
        policy, verdict = None, f"policy error: {exc.message}"
    if policy is not None and described["kind"] != "license id":
        reason = policy.violation(summary["id"])
        verdict = f"blocked by {policy.path}: {reason}" if reason else f"allowed by {policy.path}"
    if args.json:
        print(json.dumps({**described, "policy": verdict}, indent=2))
        return 0
    console = stdout_console(highlight=False, soft_wrap=True)
    where = described["kind"] + (f", license from its {described['origin']}" if described["origin"]
                                 and described["kind"] == "installed model" else "")
    console.print(f"[bold]{escape(described['subject'])}[/bold] [dim]({escape(where)})[/dim]")
    console.print(escape(badge(summary["id"])))
    if not summary["known"]:
        console.print("hearth does not know this license's terms: read the license text that came "
                      "with the model before using it" if summary["id"] else
                      "no license is stated for this model: ask its publisher before using it")
    else:
        console.print(escape(summary["name"]))
        rows = [("attribution", summary["attribution"]), ("redistribution", summary["redistribution"]),
                ("modification", summary["modification"])]
        for label, text in rows:
            console.print(f"  {label:<15}{escape(text)}")
        for index, item in enumerate(summary["restrictions"]):
            console.print(f"  {'restrictions' if index == 0 else '':<15}- {escape(item)}")
        if summary["url"]:
            console.print(f"  {'full text':<15}{escape(summary['url'])}")
    if verdict:
        console.print(f"  {'policy':<15}{escape(verdict)}")
    return 1 if verdict and verdict.startswith("policy error") else 0


def handle_audit(args: argparse.Namespace) -> int:
    import json

    from hearth.cli.output import print_columns
    from hearth.runtime import Runtime

    runtime = Runtime()
    policy_path, _ = _policy_line()
    rows = runtime.audit_licenses(commercial=args.commercial)  # a broken policy raises here
    violations = [row for row in rows if row.verdict == "violation"]
    if args.json:
        print(json.dumps({"policy": policy_path or None, "commercial": args.commercial,
                          "models": [row.as_dict() for row in rows]}, indent=2))
        return 1 if violations else 0
    rules = []
    if policy_path:
        rules.append(f"policy {policy_path}")
    if args.commercial:
        rules.append("licenses must allow commercial use")
    print("checking: " + ("; ".join(rules) if rules else
                          "nothing (no HEARTH_LICENSE_POLICY; add --commercial to require commercial use)"))
    warning = runtime.license_policy_warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if not rows:
        print("no models installed")
        return 0
    table = [["MODEL", "LICENSE", "VERDICT", "REASON"]]
    table += [[row.model, row.license or "-", row.verdict, row.reason] for row in rows]
    print_columns(table)
    if violations:
        print(f"{len(violations)} of {len(rows)} models violate the license rules")
        return 1
    return 0
