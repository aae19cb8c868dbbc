"""The component check as a long-lived process for the control service, which never imports torch:
one resolved hypes document per input line, one ``{"errors": [{"key", "message"}]}`` per output line,
from the same :func:`cauchy.build.check_components` as ``run_tasks.py --check``.

    python -m cauchy.check_worker
"""
from __future__ import annotations

import json
import sys
from typing import Any


def check(hypes: Any) -> list[dict[str, str]]:
    from cauchy.build import check_components
    from cauchy.hypes import HypesError

    try:
        check_components(hypes)
    except HypesError as exc:
        return [{"key": error.key, "message": str(error)} for error in exc.errors]
    except Exception as exc:  # the service must get an answer: a crash of the check is reported, not hung on
        return [{"key": "", "message": f"the component check failed: {type(exc).__name__}: {exc}"}]
    return []


def serve() -> None:
    """Answer lines from stdin until it closes (the service stopping); no exit code to report."""
    import cauchy.build  # noqa: F401 - the registries, before the first request

    for line in sys.stdin:
        try:
            errors = check(json.loads(line))
        except json.JSONDecodeError as exc:
            errors = [{"key": "", "message": f"not a JSON line: {exc}"}]
        sys.stdout.write(json.dumps({"errors": errors}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
