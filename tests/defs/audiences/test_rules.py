"""Audience rules are checked with DuckDB's parser before any run."""

from __future__ import annotations

import pytest

from responsys_assets.defs.audiences.rules import (
    AudienceDefinition,
    AudienceRuleError,
    load_ready_made,
    rule_columns,
    validate_rule,
    validate_rules,
)
from tests.defs.audiences.warehouse import make_warehouse

COLUMNS = ["recency_score", "clicks_30d", "last_open_at", "email", "email_permission", "sends"]


def _check(rule: str, name: str = "my_audience") -> None:
    validate_rule(AudienceDefinition(name, "", rule), COLUMNS)


@pytest.mark.parametrize(
    "rule",
    [
        "recency_score < 30 and clicks_30d = 0",
        "last_open_at < as_of - interval 30 days",
        "email like '%@example.com' and email_permission in ('OPTIN')",
        "coalesce(sends, 0) between 1 and 5 or case when sends > 9 then true else false end",
        "list_contains(list_filter([1, 2, 3], x -> x > sends), 3)",
        "CAST(sends AS BIGINT) > 1 and last_open_at::date >= date '2024-01-01'",
        "email = 'a;b -- not a comment'",
    ],
)
def test_valid_rules_pass(rule):
    _check(rule)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("recency_scor < 30", "unknown column 'recency_scor' (did you mean 'recency_score'?)"),
        ("recency_score < ", "syntax error"),
        ("sends > 0; drop table audiences.memberships", "more than one statement"),
        ("1; drop table x", "more than one statement"),
        ("sends > (select count(*) from responsys.events)", "subqueries are not allowed"),
        ("exists (select 1)", "subqueries are not allowed"),
        ("read_csv('/etc/passwd') is not null", "read_csv() is a table function"),
        ("read_text('/etc/passwd') is not null", "read_text() is a table function"),
        ("copy audiences.memberships to '/tmp/x.csv'", "COPY starts a statement"),
        ("attach '/tmp/other.duckdb'", "ATTACH starts a statement"),
        ("sends > 0 -- and the rest", "comments are not allowed"),
        ("sends > 0 /* ) from x; */", "comments are not allowed"),
        ("1) as __rule from read_csv('/etc/passwd') union all select (1", "single expression"),
        ("sends > 0) as __rule, (1", "single expression"),
        ("count(*) > 1", "aggregates rows"),
        ("last_open_at > now() - interval 1 day", "use as_of"),
        ("random() < 0.5", "repeatable"),
        ("nextval('audiences.membership_change_ids') > 0", "repeatable"),
        ("p.sends > 0", "bare column name"),
        ("sends > $1", "parameters"),
        ("", "empty"),
    ],
)
def test_bad_rules_are_named_and_explained(rule, problem):
    with pytest.raises(AudienceRuleError) as caught:
        _check(rule, name="lapsed_vips")
    message = str(caught.value)
    assert message.startswith("audience 'lapsed_vips': ")
    assert problem in message


def test_ready_made_audiences_validate_against_the_warehouse(tmp_path):
    conn = make_warehouse(tmp_path)
    ready = load_ready_made()
    assert [d.name for d in ready] == [
        "highly_engaged",
        "engaged",
        "lapsing",
        "dormant",
        "never_engaged",
        "recent_clickers",
        "hard_bounced",
        "opted_out",
    ]
    assert all(d.description and d.rule for d in ready)
    validate_rules(conn, ready)
    assert {"contact_key", "as_of", "recency_score", "suppressed"} <= set(rule_columns(conn))


def test_warehouse_validation_checks_types_and_duplicates(tmp_path):
    conn = make_warehouse(tmp_path)
    with pytest.raises(
        AudienceRuleError, match="'scored': the rule must be true/false, but it gives"
    ):
        validate_rules(conn, [AudienceDefinition("scored", "", "recency_score + 1")])
    with pytest.raises(AudienceRuleError, match="'typo': does not bind"):
        validate_rules(conn, [AudienceDefinition("typo", "", "email > interval 1 day")])
    twice = [AudienceDefinition("a", "", "sends > 0"), AudienceDefinition("a", "", "sends > 1")]
    with pytest.raises(AudienceRuleError, match="'a': defined more than once"):
        validate_rules(conn, twice)
    with pytest.raises(AudienceRuleError, match="unknown column 'nope'"):
        validate_rules(conn, [AudienceDefinition("x", "", "nope")])
