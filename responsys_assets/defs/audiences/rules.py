"""Audience rules: a name, a description and a DuckDB boolean expression over profile columns.

Rules are written by analytics engineers and run inside our SQL, so they are checked with
DuckDB's own parser before any run: a rule must be one expression that reads only the documented
profile and score columns (plus `as_of`, the evaluation time), calls only deterministic scalar
functions, and holds no subquery, comment, parameter or second statement.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

READY_MADE_YAML = Path(__file__).with_name("ready_made.yaml")
RULE_ALIAS = "__rule"
RULE_INPUT = "__rule_input"

# Expression node classes a rule may contain (DuckDB's json_serialize_sql names).
_ALLOWED_CLASSES = {
    "BETWEEN",
    "CASE",
    "CAST",
    "COLLATE",
    "COLUMN_REF",
    "COMPARISON",
    "CONJUNCTION",
    "CONSTANT",
    "FUNCTION",
    "LAMBDA",
    "OPERATOR",
    "TYPE",
}
# Built-in macros are SQL that may hide subqueries or the clock; these few are plain expressions.
_ALLOWED_MACROS = {
    "array_append",
    "array_prepend",
    "array_reverse",
    "array_to_string",
    "date_add",
    "days_in_month",
    "fdiv",
    "fmod",
    "if",
    "list_append",
    "list_count",
    "list_first",
    "list_last",
    "list_max",
    "list_min",
    "list_prepend",
    "list_reverse",
    "list_sum",
    "nullif",
    "split_part",
}
# First words that make a rule a statement rather than an expression.
_STATEMENT_WORDS = {
    "alter", "attach", "begin", "call", "checkpoint", "commit", "copy", "create", "delete",
    "describe", "detach", "drop", "explain", "export", "from", "import", "insert", "install",
    "load", "pivot", "pragma", "rollback", "select", "set", "show", "summarize", "unpivot",
    "update", "use", "vacuum", "with",
}  # fmt: skip


class AudienceRuleError(ValueError):
    """An audience rule cannot be run; the message names the audience and the problem."""

    def __init__(self, audience: str, problem: str) -> None:
        super().__init__(f"audience {audience!r}: {problem}")
        self.audience = audience
        self.problem = problem


@dataclass(frozen=True)
class AudienceDefinition:
    name: str
    description: str
    rule: str


def load_ready_made(path: Path = READY_MADE_YAML) -> list[AudienceDefinition]:
    """The audiences shipped with the project (ready_made.yaml)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["audiences"]
    return [
        AudienceDefinition(name=e["name"], description=e["description"], rule=e["rule"].strip())
        for e in entries
    ]


@functools.cache
def _function_kinds() -> dict[str, set[tuple[str, str | None]]]:
    """Built-in function name -> {(function_type, stability)}, from DuckDB's own catalog."""
    with duckdb.connect() as conn:
        rows = conn.execute(
            "select function_name, function_type, stability from duckdb_functions()"
        ).fetchall()
    kinds: dict[str, set[tuple[str, str | None]]] = {}
    for name, function_type, stability in rows:
        kinds.setdefault(name.lower(), set()).add((function_type, stability))
    return kinds


@functools.cache
def _type_names() -> set[str]:
    """Built-in type names and aliases (a cast to anything else is a mistake or a trick)."""
    with duckdb.connect() as conn:
        rows = conn.execute("select type_name from duckdb_types()").fetchall()
    return {row[0].lower() for row in rows}


def _function_problem(name: str) -> str | None:
    kinds = _function_kinds().get(name.lower())
    if not kinds:
        return f"unknown function {name}()"
    types = {function_type for function_type, _ in kinds}
    if ("scalar", "CONSISTENT") in kinds:
        return None
    if "macro" in types and name.lower() in _ALLOWED_MACROS:
        return None
    if "table" in types or "table_macro" in types:
        return f"{name}() is a table function: rules may not read files or tables"
    if "aggregate" in types or "window" in types:
        return f"{name}() aggregates rows: a rule is evaluated for one contact at a time"
    if any(stability == "CONSISTENT_WITHIN_QUERY" for _, stability in kinds):
        return f"{name}() depends on when the rule runs: use as_of (the evaluation time) instead"
    if any(stability == "VOLATILE" for _, stability in kinds):
        return f"{name}() is volatile or has side effects: rules must be repeatable"
    return f"{name}() is not allowed in rules"


def _without_locations(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_locations(v) for k, v in node.items() if not k.startswith("query_location")
        }
    if isinstance(node, list):
        return [_without_locations(v) for v in node]
    return node


def _serialize(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    return json.loads(conn.execute("select json_serialize_sql(?)", [sql]).fetchall()[0][0])


def _column_names(node: Any) -> set[str]:
    """Every bare name referenced under `node` (the parameters of a lambda)."""
    names: set[str] = set()
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            names.add(node["column_names"][-1].lower())
        for value in node.values():
            names |= _column_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _column_names(value)
    return names


def _has_comment(rule: str, tokens: list[tuple[int, Any]]) -> bool:
    """Whether `rule` holds a `--` or `/* */` comment outside its string literals.

    DuckDB 2.0's tokenizer reports comments as tokens; 1.5's drops them. So the text between
    tokens (where comments live) is searched too; a token's own text is skipped, which is what
    keeps `'a -- b'` a string.
    """
    if any(kind == duckdb.token_type.comment for _, kind in tokens):
        return True
    starts = [position for position, _ in tokens] + [len(rule)]
    for (start, _kind), end in zip(tokens, starts[1:], strict=False):
        gap = _after_quoted(rule[start:end])
        if "--" in gap or "/*" in gap:
            return True
    return "--" in rule[: starts[0]] or "/*" in rule[: starts[0]]


def _after_quoted(text: str) -> str:
    """`text` without a leading 'string' or "identifier" (doubled quotes escape)."""
    if text[:1] not in ("'", '"'):
        return text
    quote, i = text[0], 1
    while i < len(text):
        if text[i] == quote:
            if text[i + 1 : i + 2] == quote:
                i += 2
                continue
            return text[i + 1 :]
        i += 1
    return ""


_CAST_TYPE_KEYS = ("cast_type", "type_expr")


def _cast_type_names(node: dict[str, Any]) -> list[str]:
    """The type names a CAST names, nested ones included, lower-cased.

    DuckDB 1.5 serializes the target as `cast_type` (a type id, `UNBOUND` with the written name
    for a type it does not know); 2.0 as `type_expr` with `type_name`. Both are read, so the
    check does not depend on the DuckDB version.
    """
    if "type_expr" in node:
        return [str(node["type_expr"].get("type_name", "")).lower()]
    names: list[str] = []

    def walk(logical: Any) -> None:
        if isinstance(logical, list):
            for child in logical:
                walk(child)
            return
        if not isinstance(logical, dict):
            return
        if "id" in logical:
            info = logical.get("type_info") or {}
            names.append(str(info.get("name") if logical["id"] == "UNBOUND" else logical["id"]))
        for value in logical.values():
            walk(value)

    walk(node.get("cast_type"))
    return [name.lower() for name in names]


def _check_expression(node: Any, audience: str, columns: dict[str, str], bound: set[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _check_expression(child, audience, columns, bound)
        return
    if not isinstance(node, dict):
        return
    cls = node.get("class")
    if cls == "SUBQUERY":
        raise AudienceRuleError(audience, "subqueries are not allowed: use the profile columns")
    if cls == "WINDOW":
        raise AudienceRuleError(audience, "window functions are not allowed in rules")
    if cls == "PARAMETER":
        raise AudienceRuleError(audience, "parameters ($1, ?) are not allowed in rules")
    if cls == "STAR":
        raise AudienceRuleError(audience, "* and COLUMNS(...) are not allowed: name the columns")
    if cls is not None and cls not in _ALLOWED_CLASSES:
        raise AudienceRuleError(audience, f"{cls.lower()} expressions are not allowed in rules")
    if cls == "COLUMN_REF":
        names = node["column_names"]
        if len(names) > 1:
            raise AudienceRuleError(audience, f"write a bare column name, not {'.'.join(names)!r}")
        name = names[0].lower()
        if name not in columns and name not in bound:
            close = difflib.get_close_matches(name, list(columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AudienceRuleError(audience, f"unknown column {names[0]!r}{hint}")
        return
    if cls == "LAMBDA":
        params = _column_names(node["lhs"])
        _check_expression(node["expr"], audience, columns, bound | params)
        return
    if cls == "FUNCTION":
        # A list literal [1, 2] parses as main.list_value(1, 2) on DuckDB 1.5.
        implicit = node.get("schema") == "main" and node["function_name"] == "list_value"
        if (node.get("schema") and not implicit) or node.get("catalog"):
            raise AudienceRuleError(audience, "qualified function names are not allowed")
        if node.get("filter") or node.get("distinct") or node["order_bys"].get("orders"):
            raise AudienceRuleError(
                audience, f"{node['function_name']}(): FILTER/DISTINCT/ORDER BY are for aggregates"
            )
        problem = _function_problem(node["function_name"])
        if problem:
            raise AudienceRuleError(audience, problem)
    if cls == "CAST":
        for type_name in _cast_type_names(node):
            if type_name not in _type_names():
                raise AudienceRuleError(audience, f"unknown type {type_name!r}")
    for key, value in node.items():
        if key not in _CAST_TYPE_KEYS:
            _check_expression(value, audience, columns, bound)


def validate_rule(definition: AudienceDefinition, columns: Sequence[str]) -> None:
    """Raise AudienceRuleError unless the rule is one safe expression over `columns` and `as_of`."""
    name, rule = definition.name, definition.rule
    if not rule or not rule.strip():
        raise AudienceRuleError(name, "the rule is empty")
    try:
        tokens = duckdb.tokenize(rule)
    except duckdb.Error as exc:
        raise AudienceRuleError(name, f"syntax error: {exc}") from None
    if _has_comment(rule, tokens):
        raise AudienceRuleError(name, "comments are not allowed in rules")
    for position, _kind in tokens:
        if rule[position] == ";":
            raise AudienceRuleError(name, "more than one statement: a rule is one expression")
    first_word = rule.strip().split(None, 1)[0].lower()
    if first_word in _STATEMENT_WORDS:
        raise AudienceRuleError(
            name, f"{first_word.upper()} starts a statement: a rule is one expression"
        )
    known = {column.lower(): column for column in columns}
    known.setdefault("as_of", "as_of")
    wrapped = f"select ({rule}\n) as {RULE_ALIAS} from {RULE_INPUT}"
    with duckdb.connect() as conn:
        parsed = _serialize(conn, wrapped)
        reference = _serialize(conn, f"select (true) as {RULE_ALIAS} from {RULE_INPUT}")
    if parsed.get("error"):
        raise AudienceRuleError(name, f"syntax error: {parsed.get('error_message')}")
    if len(parsed["statements"]) != 1:
        raise AudienceRuleError(name, "more than one statement: a rule is one expression")
    node = dict(parsed["statements"][0]["node"])
    select_list = node.pop("select_list", None) or []
    expected = dict(reference["statements"][0]["node"])
    expected.pop("select_list")
    if (
        len(select_list) != 1
        or select_list[0].get("alias") != RULE_ALIAS
        or _without_locations(node) != _without_locations(expected)
    ):
        raise AudienceRuleError(name, "the rule must be a single expression")
    _check_expression(select_list[0], name, known, set())


def rule_input_sql() -> str:
    """The relation rules are evaluated over: a profile with its scores, one row per contact."""
    return (
        "select p.*, s.* exclude (contact_key, as_of)"
        " from audiences.profiles as p join audiences.scores as s using (contact_key)"
    )


def rule_columns(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The columns a rule may use (profiles and scores, including as_of)."""
    return [column[0] for column in _describe(conn, f"{rule_input_sql()} limit 0")]


def _describe(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    result = conn.execute(sql)
    description = result.description
    result.fetchall()  # finish the result so the connection is free for the next query
    return description


def validate_rules(
    conn: duckdb.DuckDBPyConnection, definitions: Iterable[AudienceDefinition]
) -> None:
    """Check every definition against the warehouse's columns and types before any run."""
    columns = rule_columns(conn)
    seen: set[str] = set()
    for definition in definitions:
        if definition.name in seen:
            raise AudienceRuleError(definition.name, "defined more than once")
        seen.add(definition.name)
        validate_rule(definition, columns)
        try:
            description = _describe(
                conn,
                f"select ({definition.rule}\n) as {RULE_ALIAS} from ({rule_input_sql()}) limit 0",
            )
        except duckdb.Error as exc:
            raise AudienceRuleError(definition.name, f"does not bind: {exc}") from None
        kind = str(description[0][1])
        if kind.upper() != "BOOLEAN":
            raise AudienceRuleError(
                definition.name, f"the rule must be true/false, but it gives {kind}"
            )
