"""String built-ins (feel-scala BuiltinStringFunctions).

Regular expressions are XML-Schema/Java flavoured in FEEL and run on RE2 (linear time); it covers the
common subset. `$1` group references in replacements are translated to Python's form.
Lengths and positions count code points.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import uuid as uuid_module
from decimal import Decimal
from typing import Any

try:
    import re2 as _re2

    _RE2_OPTIONS = _re2.Options()
    _RE2_OPTIONS.log_errors = False  # an invalid pattern is the expression's problem, not a log line
except ImportError:  # pragma: no cover - pinned in pyproject.toml
    _re2 = None

from engine.feel.budget import ITEM_BYTES, charge_running, charges_as_it_goes
from engine.feel.builtins.registry import (
    InvalidArgument,
    builtin,
    integer,
    list_value,
    string,
)

_INLINE_FLAGS = {"i", "s", "m"}


def _pattern(pattern: Any, flags: Any = None) -> Any:
    """The compiled regular expression: RE2 (linear time in the input, whatever the pattern)
    when available. FEEL's XML-Schema regexes have no backreferences or lookaround, so RE2
    loses nothing, and a pattern like `(a+)+$` can no longer freeze the engine."""
    text = string(pattern)
    if len(text) > MAX_PATTERN_LENGTH:
        # rewriting and compiling is linear but uninterruptible: a 1 MB pattern of dots took
        # 3 s on the partition's thread, 1000 of them (with Java's `.`) take about 12 ms once
        raise InvalidArgument(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    inline = ""
    if flags is not None:
        for flag in string(flags):
            if flag == "q":
                text = re.escape(text)
            elif flag == "x":
                text = _strip_whitespace(text)
            elif flag in _INLINE_FLAGS:
                inline += flag
            else:
                raise InvalidArgument(f"unknown regex flag '{flag}'")
    inline = "".join(sorted(set(inline)))
    if "s" not in inline and "." in text:
        text = _java_dot(text)
    # (the `q` and `x` flags and Java's `.` can lengthen the text: longer ones are compiled
    # each time, not cached - 512 cached patterns of 10,000 characters held 200 MB)
    if len(text) > MAX_CACHED_PATTERN:
        return _compile(text, inline)
    return _compiled(text, inline)


#: Longest pattern accepted (a real one is a few dozen characters).
MAX_PATTERN_LENGTH = 1000
#: Patterns up to this length are cached (compiled once per engine process).
MAX_CACHED_PATTERN = MAX_PATTERN_LENGTH
#: Sum of the bounds of counted repetitions (`{n}`, `{n,m}`, `{n,}`) a pattern may have. RE2
#: matches in linear time, but *compiling* `[a-z]{1,1000}` ten times over takes 175 ms and
#: thirty times 2 s (one uninterruptible call on the partition's thread); 1000 (RE2's own
#: limit for a single repetition) keeps the compilation within a few milliseconds.
MAX_REPETITION_TOTAL = 1000
_REPETITION = re.compile(r"(\\*)([xpP]?)\{(\d+)(?:,(\d*))?\}")


def _check_repetitions(text: str) -> None:
    total = 0
    for match in _REPETITION.finditer(text):
        if len(match.group(1)) % 2:  # `\{` is a literal brace, `\x{85}` / `\p{..}` an escape
            continue
        total += int(match.group(4) or match.group(3))
        if total > MAX_REPETITION_TOTAL:
            raise InvalidArgument(
                f"regular expression has counted repetitions adding up to more than {MAX_REPETITION_TOTAL}"
            )


@functools.lru_cache(maxsize=512)
def _compiled(text: str, inline: str) -> Any:
    return _compile(text, inline)


def _compile(text: str, inline: str) -> Any:
    _check_repetitions(text)
    prefix = f"(?{inline})" if inline else ""
    if _re2 is not None:
        try:
            return _re2.compile(prefix + text, _RE2_OPTIONS)
        except _re2.error as error:
            raise InvalidArgument(f"invalid regular expression '{text}': {error}") from None
    try:  # pragma: no cover - google-re2 is a pinned dependency; this is its absence
        return re.compile(prefix + _java_to_python_regex(text))
    except (re.error, OverflowError) as error:  # pragma: no cover
        raise InvalidArgument(f"invalid regular expression '{text}': {error}") from None


# Java's `.` (feel-scala's regexes are java.util.regex) stops at every line terminator, RE2's
# only at \n: `matches("a\rb", "a.b")` is false in Zeebe.
_JAVA_DOT = "[^\\n\\r\\x{85}\\x{2028}\\x{2029}]"


def _java_dot(text: str) -> str:
    """An unescaped `.` outside character classes, as Java reads it without flag `s`."""
    result = []
    in_class = False
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            # `]` right after `[` or `[^` is a literal bracket, not the end of the class
            if char == "]" and not text[:index].endswith(("[", "[^")):
                in_class = False
        elif char == "[":
            in_class = True
        elif char == ".":
            result.append(_JAVA_DOT)
            continue
        result.append(char)
    return "".join(result)


def _strip_whitespace(text: str) -> str:
    """XSD flag `x`: whitespace outside character classes is removed."""
    result = []
    in_class = False
    escaped = False
    for char in text:
        if escaped:
            result.append(char)
            escaped = False
        elif char == "\\":
            result.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            result.append(char)
        elif char == "]":
            in_class = False
            result.append(char)
        elif in_class or char not in " \t\n\r":
            result.append(char)
    return "".join(result)


def _java_to_python_regex(text: str) -> str:
    # Java/XSD class subtraction and possessive quantifiers are rare in FEEL; the
    # common difference is \p{L} style classes, which Python's re lacks (RE2 has them).
    return text.replace(r"\p{L}", r"[^\W\d_]").replace(r"\p{N}", r"\d")


@builtin("substring", "string, start position")
def substring(text: Any, start: Any) -> str:
    return _substring(text, start, None)


@builtin("substring", "string, start position, length")
def substring_length(text: Any, start: Any, length: Any) -> str:
    return _substring(text, start, length)


def _substring(text: Any, start: Any, length: Any) -> str:
    text = string(text)
    position = integer(start)
    if position == 0 or abs(position) > len(text) + (1 if position > 0 else 0):
        raise InvalidArgument("start position out of range")
    begin = position - 1 if position > 0 else len(text) + position
    if length is None:
        return text[begin:]
    count = integer(length)
    if count < 0:
        raise InvalidArgument("negative length")
    return text[begin : begin + count]


@builtin("string length", "string")
def string_length(text: Any) -> Decimal:
    return Decimal(len(string(text)))


@builtin("upper case", "string")
def upper_case(text: Any) -> str:
    return string(text).upper()


@builtin("lower case", "string")
def lower_case(text: Any) -> str:
    return string(text).lower()


@builtin("substring before", "string, match")
def substring_before(text: Any, match: Any) -> str:
    text, match = string(text), string(match)
    index = text.find(match)
    return "" if index < 0 else text[:index]


@builtin("substring after", "string, match")
def substring_after(text: Any, match: Any) -> str:
    text, match = string(text), string(match)
    if not match:
        return text
    index = text.find(match)
    return "" if index < 0 else text[index + len(match) :]


def _replacement(replacement: str) -> str:
    # Java: $1 / ${name} group references, \$ for a literal dollar.
    result = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        if char == "\\" and index + 1 < len(replacement):
            result.append(replacement[index + 1].replace("\\", "\\\\"))
            index += 2
            continue
        if char == "$":
            match = re.match(r"\$(\d+)|\$\{(\w+)\}", replacement[index:])
            if not match:
                raise InvalidArgument("illegal group reference")
            result.append(f"\\g<{match.group(1) or match.group(2)}>")
            index += match.end()
            continue
        result.append("\\\\" if char == "\\" else char)
        index += 1
    return "".join(result)


@builtin("replace", "input, pattern, replacement")
@charges_as_it_goes
def replace(text: Any, pattern: Any, replacement: Any) -> str:
    return replace_flags(text, pattern, replacement, None)


@builtin("replace", "input, pattern, replacement, flags")
@charges_as_it_goes
def replace_flags(text: Any, pattern: Any, replacement: Any, flags: Any) -> str:
    compiled = _pattern(pattern, flags)
    template = _replacement(string(replacement))
    text = string(text)
    # Match by match rather than `sub`, charging what each replacement produces: a pattern
    # that matches everywhere (`""`) times a long replacement is quadratic output, which the
    # memory budget must stop before it is allocated, not after.
    pieces: list[str] = []
    last = 0
    try:
        for match in compiled.finditer(text):
            start = match.start()
            expanded = match.expand(template)
            charge_running(1, start - last + len(expanded))
            pieces.append(text[last:start])
            pieces.append(expanded)
            last = match.end()
    except (re.error, IndexError, ValueError) as error:
        raise InvalidArgument(str(error)) from None
    pieces.append(text[last:])
    return "".join(pieces)


@builtin("contains", "string, match")
def contains(text: Any, match: Any) -> bool:
    return string(match) in string(text)


@builtin("starts with", "string, match")
def starts_with(text: Any, match: Any) -> bool:
    return string(text).startswith(string(match))


@builtin("ends with", "string, match")
def ends_with(text: Any, match: Any) -> bool:
    return string(text).endswith(string(match))


@builtin("matches", "input, pattern")
def matches(text: Any, pattern: Any) -> bool:
    return matches_flags(text, pattern, None)


@builtin("matches", "input, pattern, flags")
def matches_flags(text: Any, pattern: Any, flags: Any) -> bool:
    text = string(text)
    return _pattern(pattern, flags).search(text) is not None


@builtin("split", "string, delimiter")
@charges_as_it_goes
def split(text: Any, delimiter: Any) -> list[str]:
    compiled = _pattern(delimiter)
    text = string(text)
    # One item per match, charged as it is made (a 100,000-character string split on "" is
    # 100,000 items): the budget interrupts a huge split instead of waiting for it.
    parts: list[str] = []
    last = 0
    for match in compiled.finditer(text):
        start = match.start()
        charge_running(1, ITEM_BYTES + start - last)
        parts.append(text[last:start])
        last = match.end()
    parts.append(text[last:])
    return parts


@builtin("extract", "string, pattern")
@charges_as_it_goes
def extract(text: Any, pattern: Any) -> list[str]:
    result = []
    for match in _pattern(pattern).finditer(string(text)):
        found = match.group(0)
        charge_running(1, ITEM_BYTES + len(found))
        result.append(found)
    return result


@builtin("trim", "string")
def trim(text: Any) -> str:
    return string(text).strip()


@builtin("is blank", "string")
def is_blank(text: Any) -> bool:
    return not string(text).strip()


@builtin("uuid")
def uuid() -> str:
    return str(uuid_module.uuid4())


@builtin("to base64", "value")
def to_base64(text: Any) -> str:
    return base64.b64encode(string(text).encode("utf-8")).decode("ascii")


@builtin("from base64", "value")
def from_base64(text: Any) -> str:
    try:
        return base64.b64decode(string(text), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument(f"not base64: {error}") from None


def _string_join(items: Any, delimiter: Any = None, prefix: Any = None, suffix: Any = None) -> str:
    values = list_value(items)
    parts = []
    for value in values:
        if value is None:
            continue
        parts.append(string(value))
    separator = "" if delimiter is None else string(delimiter)
    start = "" if prefix is None else string(prefix)
    end = "" if suffix is None else string(suffix)
    return start + separator.join(parts) + end


builtin("string join", "list")(_string_join)
builtin("string join", "list, delimiter")(_string_join)
# feel-scala extension (MANIFEST.md point 6): prefix and suffix
builtin("string join", "list, delimiter, prefix, suffix")(_string_join)
