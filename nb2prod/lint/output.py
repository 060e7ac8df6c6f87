"""How results are shown. `full` and `concise` are for people, `json` for machines; the CI
formats (SARIF, GitHub, GitLab, Markdown) live in `reporters.py`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from nb2prod.lint.violation import FileResult

FORMATS = ("full", "concise", "json", "sarif", "github", "gitlab", "markdown")

_BOLD, _RED, _CYAN, _RESET = "\033[1m", "\033[31m", "\033[36m", "\033[0m"


def render(results: Sequence[FileResult], output_format: str, *, colour: bool) -> str:
    if output_format == "json":
        return render_json(results)
    if output_format in ("full", "concise"):
        return render_text(results, colour=colour, concise=output_format == "concise")
    from nb2prod.lint import reporters

    return reporters.render(results, output_format)


def render_text(results: Sequence[FileResult], *, colour: bool, concise: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    lines = []
    for result in results:
        if result.error:
            lines.append(f"{paint(result.path, _BOLD)}: {paint('error', _RED)}: {result.error}")
        for v in result.violations:
            location = paint(v.location, _BOLD)
            lines.append(f"{location}: {paint(v.code, _RED)} {v.message}")
            if not concise:
                lines.append(f"  {paint('rule', _CYAN)}: {v.name} (nb2prod rule {v.code})")
    count = sum(len(r.violations) for r in results)
    errors = sum(1 for r in results if r.error)
    if not concise or count or errors:
        summary = f"Found {count} finding{'s' if count != 1 else ''}"
        if errors:
            summary += f" and {errors} file{'s' if errors != 1 else ''} that could not be linted"
        lines.append(summary + "." if count or errors else "All checks passed.")
    return "\n".join(lines) + "\n" if lines else ""


def render_json(results: Sequence[FileResult]) -> str:
    rows = [
        {
            "code": v.code,
            "name": v.name,
            "message": v.message,
            "filename": v.path,
            "cell": v.cell,
            "location": {"row": v.line, "column": v.column},
            "end_location": {"row": v.end_line, "column": v.end_column},
        }
        for result in results
        for v in result.violations
    ]
    rows += [{"code": "error", "message": r.error, "filename": r.path} for r in results if r.error]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def statistics(results: Sequence[FileResult]) -> str:
    counts = Counter((v.code, v.name) for r in results for v in r.violations)
    lines = [f"{n:>5}  {code}  {name}" for (code, name), n in counts.most_common()]
    return "\n".join(lines) + "\n" if lines else ""
