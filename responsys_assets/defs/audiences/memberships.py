"""Audience memberships: who is in each audience now, and every ENTER / EXIT on the way.

An evaluation runs every rule over the profiles as of one time, diffs the result against the
current memberships and, in one transaction, appends the changes (which exports read by change_id)
and updates the memberships that changed. Members keep their `entered_at` while they stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb

from responsys_assets.defs.audiences.incremental import BuildOutcome, update_profiles
from responsys_assets.defs.audiences.profiles import normalise_as_of, timestamp_literal
from responsys_assets.defs.audiences.rules import (
    AudienceDefinition,
    rule_input_sql,
    validate_rules,
)
from responsys_assets.defs.audiences.scores import require_profiles_as_of
from responsys_assets.warehouse.transaction import rollback


@dataclass(frozen=True)
class AudienceOutcome:
    size: int
    suppressed: int  # members flagged suppressed (opted out, hard bounced, complained)
    entered: int
    exited: int
    removed: bool = False  # the audience left the config: all its members exited


@dataclass(frozen=True)
class EvaluationResult:
    evaluation_id: int
    as_of: datetime
    audiences: dict[str, AudienceOutcome]
    build: BuildOutcome | None = None  # how profiles and scores were brought to as_of (recompute)


# Changes with every (audience, contact) pair added, removed or altered; evaluation_id is left
# out, since every evaluation restamps it.
MEMBERSHIPS_CHECKSUM = "bit_xor(hash(audience, contact_key, riid, email, suppressed))"


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _contacts_to_diff_sql(definitions: list[AudienceDefinition], as_of_literal: str) -> str:
    """The contacts whose audiences, riid, email or suppression differ from
    audiences.contact_audiences, with their sorted audience names now (null: in none).

    One pass over the rule input, one boolean per rule, joined at once with the stored
    per-contact rows, so only the few contacts that changed are written out. The definitions
    come sorted by name ($names), so the names come out sorted."""
    if definitions:
        # Each rule has passed validate_rules: one expression over the rule input's columns.
        hits = ",\n".join(f"coalesce(({d.rule}\n), false)" for d in definitions)
        members = f"""
            select contact_key, riid, email, suppressed,
                   list_where($names::varchar[], hits) as audiences
            from (
                select contact_key, riid, email, suppressed, [{hits}] as hits
                from ({rule_input_sql()})
                where as_of = {as_of_literal}
            )
            where list_contains(hits, true)
        """
    else:
        members = (
            "select null::varchar as contact_key, null::bigint as riid, null::varchar as email,"
            " null::boolean as suppressed, null::varchar[] as audiences limit 0"
        )
    return f"""
        create or replace temp table _contacts_to_diff as
        with h as ({members})
        select coalesce(h.contact_key, c.contact_key) as contact_key,
               h.riid, h.email, h.suppressed, h.audiences
        from h
        full outer join audiences.contact_audiences as c on c.contact_key = h.contact_key
        where h.contact_key is null or c.contact_key is null
           or h.audiences is distinct from c.audiences
           or h.riid is distinct from c.riid or h.email is distinct from c.email
           or h.suppressed is distinct from c.suppressed
    """


def evaluate_audiences(
    conn: duckdb.DuckDBPyConnection, definitions: Iterable[AudienceDefinition], as_of: datetime
) -> EvaluationResult:
    """Evaluate every audience as of `as_of` over the profiles and scores built for that time."""
    definitions = list(definitions)
    as_of = normalise_as_of(as_of)
    validate_rules(conn, definitions)
    require_profiles_as_of(conn, as_of)
    literal = timestamp_literal(as_of)
    conn.execute("begin transaction")
    try:
        evaluation_id = conn.execute(
            "select coalesce(max(evaluation_id), 0) + 1 from audiences.evaluations"
        ).fetchall()[0][0]
        conn.execute(
            "insert into audiences.evaluations (evaluation_id, as_of, started_at) values (?, ?, ?)",
            [evaluation_id, as_of, _utc_now()],
        )
        _check_contact_audiences(conn, evaluation_id)
        by_name = sorted(definitions, key=lambda d: d.name)
        names = {"names": [d.name for d in by_name]} if by_name else None
        conn.execute(_contacts_to_diff_sql(by_name, literal), names)
        outcomes = _apply_changes(conn, definitions, evaluation_id, as_of)
        conn.execute(
            "update audiences.evaluations set finished_at = ? where evaluation_id = ?",
            [_utc_now(), evaluation_id],
        )
        conn.execute("drop table _contacts_to_diff")
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return EvaluationResult(evaluation_id, as_of, outcomes)


def _apply_changes(
    conn: duckdb.DuckDBPyConnection,
    definitions: list[AudienceDefinition],
    evaluation_id: int,
    as_of: datetime,
) -> dict[str, AudienceOutcome]:
    """Append ENTER/EXIT rows, update memberships, record sizes (in the caller's transaction).

    Most contacts are in the same audiences as last time, with the same riid, email and
    suppression: only the (audience, contact) pairs of the ones in _contacts_to_diff are diffed
    against the current memberships to find who entered, who exited and whose riid, email or
    suppression changed.
    """
    conn.execute(
        """
        create or replace temp table _membership_diff as
        with c as (
            select unnest(audiences) as audience, contact_key, riid, email, suppressed
            from _contacts_to_diff
        ),
        m as (
            select * from audiences.memberships
            where contact_key in (select contact_key from _contacts_to_diff)
        )
        select
            coalesce(c.audience, m.audience) as audience,
            coalesce(c.contact_key, m.contact_key) as contact_key,
            case when m.contact_key is null then 'ENTER' when c.contact_key is null then 'EXIT' end
                as change,
            coalesce(c.riid, m.riid) as riid,
            coalesce(c.email, m.email) as email,
            coalesce(c.suppressed, m.suppressed) as suppressed,
            coalesce(m.entered_at, $as_of::timestamp) as entered_at
        from c
        full outer join m using (audience, contact_key)
        where m.contact_key is null or c.contact_key is null
           or c.riid is distinct from m.riid or c.email is distinct from m.email
           or c.suppressed is distinct from m.suppressed
        """,
        {"as_of": as_of},
    )
    conn.execute(
        """
        insert into audiences.membership_changes
            (change_id, audience, contact_key, riid, email, change, changed_at, evaluation_id,
             suppressed)
        select (select coalesce(max(change_id), 0) from audiences.membership_changes)
                   + row_number() over (order by audience, change, contact_key),
               audience, contact_key, riid, email, change, $as_of::timestamp, $evaluation_id,
               suppressed
        from _membership_diff
        where change is not null
        """,  # ids go on from the newest; no sequence, so the SQL runs on a lake too
        {"as_of": as_of, "evaluation_id": evaluation_id},
    )
    counts = {
        row[0]: row[1:]
        for row in conn.execute(
            """
            select audience,
                   count(*) filter (where change = 'ENTER'),
                   count(*) filter (where change = 'EXIT')
            from _membership_diff
            group by audience
            """
        ).fetchall()
    }
    conn.execute(
        """
        delete from audiences.memberships as m
        using _membership_diff as d
        where m.audience = d.audience and m.contact_key = d.contact_key
        """
    )
    conn.execute(
        """
        insert into audiences.memberships
            (audience, contact_key, riid, email, entered_at, evaluation_id, suppressed)
        select audience, contact_key, riid, email, entered_at, $evaluation_id, suppressed
        from _membership_diff
        where change is distinct from 'EXIT'
        """,
        {"evaluation_id": evaluation_id},
    )
    conn.execute("update audiences.memberships set evaluation_id = ?", [evaluation_id])
    conn.execute(
        "update audiences.evaluations set memberships_checksum = ? where evaluation_id = ?",
        [_memberships_checksum(conn), evaluation_id],
    )
    conn.execute(
        "delete from audiences.contact_audiences"
        " where contact_key in (select contact_key from _contacts_to_diff)"
    )
    conn.execute(
        "insert into audiences.contact_audiences"
        " (contact_key, audiences, riid, email, suppressed)"
        " select contact_key, audiences, riid, email, suppressed from _contacts_to_diff"
        " where audiences is not null"
    )
    conn.execute("drop table _membership_diff")
    # memberships now hold every rule's members (the diff above brought them there)
    sizes = {
        row[0]: row[1:]
        for row in conn.execute(
            "select audience, count(*), count(*) filter (where suppressed)"
            " from audiences.memberships group by audience"
        ).fetchall()
    }
    outcomes: dict[str, AudienceOutcome] = {}
    rules = {definition.name: definition.rule for definition in definitions}
    for name in list(rules) + sorted(set(counts) - set(rules)):
        size, suppressed = sizes.get(name, (0, 0))
        entered, exited = counts.get(name, (0, 0))
        outcomes[name] = AudienceOutcome(size, suppressed, entered, exited, name not in rules)
        conn.execute(
            "insert into audiences.evaluation_audiences values (?, ?, ?, ?, ?, ?, ?)",
            [evaluation_id, name, rules.get(name), size, suppressed, entered, exited],
        )
    return outcomes


def _memberships_checksum(conn: duckdb.DuckDBPyConnection) -> int | None:
    """An order-free checksum of audiences.memberships (None when it is empty)."""
    sql = f"select {MEMBERSHIPS_CHECKSUM} from audiences.memberships"
    return conn.execute(sql).fetchall()[0][0]


def _check_contact_audiences(conn: duckdb.DuckDBPyConnection, evaluation_id: int) -> None:
    """Rebuild audiences.contact_audiences from audiences.memberships unless memberships are
    exactly what the previous evaluation left (its recorded checksum) and the per-contact table
    lists as many pairs: a direct write to memberships, or the first evaluation after the
    table was added, makes the next evaluation rebuild it."""
    listed = conn.execute(
        "select coalesce(sum(len(audiences)), 0) from audiences.contact_audiences"
    ).fetchall()[0][0]
    rows = conn.execute("select count(*) from audiences.memberships").fetchall()[0][0]
    recorded = conn.execute(
        "select memberships_checksum from audiences.evaluations where evaluation_id ="
        " (select max(evaluation_id) from audiences.evaluations where evaluation_id < ?)",
        [evaluation_id],
    ).fetchall()
    expected = recorded[0][0] if recorded else None
    if listed == rows and _memberships_checksum(conn) == expected:
        return
    conn.execute("delete from audiences.contact_audiences")
    # A contact whose rows disagree on riid, email or suppression gets a null list, so the
    # evaluation diffs all of its pairs.
    conn.execute(
        """
        insert into audiences.contact_audiences (contact_key, audiences, riid, email, suppressed)
        select
            contact_key,
            case when count(distinct {'r': riid, 'e': email, 's': suppressed}) = 1
                then list_sort(list(audience)) end,
            any_value(riid),
            any_value(email),
            any_value(suppressed)
        from audiences.memberships
        group by contact_key
        """
    )


def audience_history(conn: duckdb.DuckDBPyConnection) -> list[tuple[int, datetime, str, int]]:
    """(evaluation_id, as_of, audience, size) for every evaluation, for a size-over-time plot."""
    return conn.execute(
        """
        select a.evaluation_id, e.as_of, a.audience, a.size
        from audiences.evaluation_audiences as a
        join audiences.evaluations as e using (evaluation_id)
        order by a.evaluation_id, a.audience
        """
    ).fetchall()


def recompute(
    conn: duckdb.DuckDBPyConnection,
    definitions: Iterable[AudienceDefinition],
    as_of: datetime,
    *,
    mode: str = "full",
) -> EvaluationResult:
    """Bring profiles and scores to `as_of` (in full, or incrementally when safe with mode
    "auto"), then evaluate the audiences on them."""
    definitions = list(definitions)
    validate_rules(conn, definitions)  # fail on a bad rule before the expensive rebuild
    conn.execute("begin transaction")
    try:
        build = update_profiles(conn, as_of, mode=mode)
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    result = evaluate_audiences(conn, definitions, as_of)
    return replace(result, build=build)
