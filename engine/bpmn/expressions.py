"""Deploy-time checks of expression attributes, as Zeebe's ZeebeExpressionValidator does them.

Zeebe parses every expression when a process is deployed and rejects the deployment when one
cannot be parsed, when a FEEL expression is required but a static value was given, or when a
variable-mapping target is not a plain path. The messages below are Zeebe's, so a client sees
the same rejection text from the embedded engine as from a real broker.

FEEL itself lives in `engine.feel`; every FEEL expression is compiled here, at deploy time.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from engine import feel
from engine.bpmn.model import Expression

logger = logging.getLogger(__name__)

#: Variable-mapping targets (Zeebe ZeebeExpressionValidator.PATH_PATTERN).
PATH_PATTERN = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)*")
PATH_PATTERN_TEXT = r"[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)*"
PATH_RESERVED_WORDS = (
    "null",
    "true",
    "false",
    "function",
    "if",
    "then",
    "else",
    "for",
    "between",
    "instance",
    "of",
)


def compile_feel(text: str) -> tuple[object | None, str | None]:
    """Compile FEEL source; returns (compiled, None) or (None, Zeebe-style failure message)."""
    try:
        return feel.compile_expression(text), None
    except feel.FeelSyntaxError as error:
        return None, f"failed to parse expression '{text}': {error}"
    except Exception as error:  # a FEEL bug must reject the resource, not crash the deploy
        logger.exception("FEEL compiler failed on %r", text)
        return None, f"failed to parse expression '{text}': {type(error).__name__}: {error}"


def check_expression(
    raw: str | None,
    *,
    mandatory: bool,
    non_static: bool = False,
    attribute: str | None = None,
) -> tuple[Expression | None, list[str]]:
    """Validate one expression attribute; returns the Expression (None when absent) and problems.

    Mirrors `ZeebeExpressionValidator.ExpressionVerification`: a missing mandatory expression,
    an unparsable FEEL expression, or a static value where FEEL is required is an error.
    `attribute` names the attribute in a parse failure (Zeebe's message leaves it out; ours
    keeps Zeebe's text and appends it, because one extension element has several).
    """
    if raw is None:
        if mandatory:
            return None, ["Expected expression but not found."]
        return None, []
    expression = Expression(raw=raw)
    if expression.is_feel:
        compiled, failure = compile_feel(expression.text)
        if failure is not None:
            if attribute is not None:
                failure = f"{failure} (attribute '{attribute}')"
            return None, [failure]
        return Expression(raw=raw, compiled=compiled), []
    if non_static:
        return None, [
            f"Expected expression but found static value '{raw}'. "
            f"An expression must start with '=' (e.g. '={raw}')."
        ]
    return expression, []


def check_path(target: str | None) -> list[str]:
    """Validate a mapping target (Zeebe `verifyPath`)."""
    if target is None or target == "":
        return ["Expected path expression but not found."]
    problems = []
    if not PATH_PATTERN.fullmatch(target):
        problems.append(
            f"Expected path expression '{target}' but doesn't match the pattern '{PATH_PATTERN_TEXT}'."
        )
    if target in PATH_RESERVED_WORDS:
        problems.append(
            f"Expected path expression '{target}' but is one of the reserved words "
            f"({', '.join(PATH_RESERVED_WORDS)})."
        )
    return problems


def parse_csv_list(text: str) -> list[str] | None:
    """Zeebe's static candidateGroups/candidateUsers syntax `a, b,c`; None when malformed."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(item == "" for item in items):
        return None
    return items


def is_zoned_date_time(text: str) -> bool:
    """A static dueDate/followUpDate must be an ISO date-time with an offset (ZonedDateTime)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return parsed.tzinfo is not None
