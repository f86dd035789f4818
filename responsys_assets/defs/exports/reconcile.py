"""Reconciliation: does Responsys still hold what an export last wrote?

Pure logic, no I/O: choose a bounded, deterministic sample of records (those the run just sent
first), compare what Responsys returns with what we sent, value by value, and classify each
record. `read_back.py` gathers the expectations from the warehouse and fetches the records.

Only representations Responsys documents are normalised before comparing:
- an empty value: we send "" for a missing value, Responsys returns null for an empty field
  (Oracle's retrieve samples show `null`);
- field-name case for profile lists and PETs (field names are case-insensitive, reference §4),
  never for supplemental tables (their names are case-sensitive, §2.4);
- permission status: the merge rule's `optinValue`/`optoutValue` are stored as I/O (§2.1, §4).
Anything else that differs is reported, so a real change in Responsys is never explained away.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from responsys_assets.lib.responsys import ResponsysError, classify

MATCH = "match"
MISSING = "missing_in_responsys"  # sent, not found
FIELD_DIFFERS = "field_differs"  # found, some value is not what we sent
STILL_PRESENT = "still_present"  # deleted on exit, still found
MAX_DETAILS = 50  # drifted records kept in details and metadata

_EMAIL_RE = re.compile(r"[^\s@]+@[^\s@]+")


@dataclass(frozen=True)
class Expectation:
    """One record as we last wrote it, and how to find it in Responsys."""

    contact_key: str
    record: str  # the record's Responsys key for people, e.g. "RIID_ 101" (never an email)
    lookup: Any  # what the fetch function needs (opaque here)
    fields: dict[str, str] | None  # values sent; None = deleted on exit, must be absent
    just_sent: bool = False  # written (or deleted) by the run being reconciled


@dataclass(frozen=True)
class Comparison:
    """How values are compared for one export."""

    names_case_sensitive: bool = False  # True for supplemental tables
    # field -> {value we send: value Responsys stores}, e.g. permission "Y" -> "I"
    stored_as: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldDifference:
    field: str
    expected: str | None
    actual: str | None


@dataclass(frozen=True)
class RecordOutcome:
    contact_key: str
    record: str
    status: str
    differences: tuple[FieldDifference, ...] = ()


@dataclass
class ReconcileResult:
    export: str
    sample_size: int
    outcomes: list[RecordOutcome] = field(default_factory=list)
    unread: int = 0  # sampled records not read because the read-back stopped
    stopped_by: str | None = None

    @property
    def checked(self) -> int:
        return len(self.outcomes)

    @property
    def drifted(self) -> list[RecordOutcome]:
        return [o for o in self.outcomes if o.status != MATCH]

    @property
    def passed(self) -> bool:
        """No drift, and every sampled record was read."""
        return not self.drifted and self.stopped_by is None

    def counts(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {s: counts[s] for s in (MATCH, MISSING, FIELD_DIFFERS, STILL_PRESENT)}

    def details(self) -> list[dict]:
        """Drifted records, emails masked; bounded so metadata stays small."""
        return [
            {
                "record": o.record,
                "contact_key": mask(o.contact_key),
                "status": o.status,
                "fields": [
                    {"field": d.field, "expected": mask(d.expected), "actual": mask(d.actual)}
                    for d in o.differences
                ],
            }
            for o in self.drifted[:MAX_DETAILS]
        ]

    def summary(self) -> list[str]:
        """One line per drifted record, e.g. "RIID_ 101: field_differs CITY_"."""
        lines = []
        for o in self.drifted[:MAX_DETAILS]:
            names = ", ".join(d.field for d in o.differences)
            lines.append(f"{o.record}: {o.status}{' ' + names if names else ''}")
        return lines

    def metadata(self) -> dict:
        return {
            "reconcile_sample_size": self.sample_size,
            "reconcile_checked": self.checked,
            "reconcile_drifted": len(self.drifted),
            "reconcile_unread": self.unread,
            **{f"reconcile_{status}": n for status, n in self.counts().items()},
        }


def mask(value: str | None) -> str | None:
    """Replace email addresses by a short hash, so reports can tell two apart without showing
    either."""
    if value is None:
        return None
    return _EMAIL_RE.sub(
        lambda m: f"[email {hashlib.sha256(m.group().encode()).hexdigest()[:8]}]", value
    )


def sample_digest(seed: str, contact_key: str) -> str:
    """The sample order; read_back.py computes the same digest in SQL (DuckDB's sha256)."""
    return hashlib.sha256(f"{seed}/{contact_key}".encode()).hexdigest()


def choose_sample(candidates: Iterable[Expectation], size: int, seed: str) -> list[Expectation]:
    """At most `size` records: those the run just sent first, then older ones, each group in an
    order fixed by `seed` (the run id), so a re-run of the check reads the same records."""
    if size <= 0:
        return []

    def order(e: Expectation) -> tuple[bool, str]:
        digest = sample_digest(seed, e.contact_key)
        return (not e.just_sent, digest)

    unique = {e.contact_key: e for e in candidates}
    return sorted(unique.values(), key=order)[:size]


def _value(value: Any) -> str:
    return "" if value is None else str(value)


def compare(
    expected: dict[str, str], actual: dict[str, Any], rules: Comparison
) -> list[FieldDifference]:
    """Fields whose stored value is not the one we sent (after documented normalisation)."""

    def name(n: str) -> str:
        return n if rules.names_case_sensitive else n.upper()

    got = {name(k): v for k, v in actual.items()}
    stored = {name(k): v for k, v in rules.stored_as.items()}
    differences = []
    for field_name, sent in expected.items():
        key = name(field_name)
        want = _value(sent)
        want = stored.get(key, {}).get(want, want)
        have = _value(got.get(key))  # a field not returned counts as empty
        if want != have:
            differences.append(FieldDifference(field_name, want or None, have or None))
    return differences


def judge(expectation: Expectation, actual: dict[str, Any] | None, rules: Comparison):
    """Classify one record given what Responsys returned (None: not found)."""
    e = expectation
    if e.fields is None:
        status = MATCH if actual is None else STILL_PRESENT
        return RecordOutcome(e.contact_key, e.record, status)
    if actual is None:
        return RecordOutcome(e.contact_key, e.record, MISSING)
    differences = tuple(compare(e.fields, actual, rules))
    return RecordOutcome(
        e.contact_key, e.record, FIELD_DIFFERS if differences else MATCH, differences
    )


def reconcile(
    export: str,
    sample: Sequence[Expectation],
    fetch: Callable[[Expectation], dict[str, Any] | None],
    rules: Comparison,
    *,
    sample_size: int,
) -> ReconcileResult:
    """Read each sampled record back and judge it; the first Responsys error stops the read-back
    (the rest are counted unread), so a throttled or unreachable account costs one call."""
    result = ReconcileResult(export=export, sample_size=sample_size)
    for index, expectation in enumerate(sample):
        try:
            actual = fetch(expectation)
        except ResponsysError as exc:
            result.unread = len(sample) - index
            result.stopped_by = f"{classify(exc)}: {mask(str(exc))}"
            break
        result.outcomes.append(judge(expectation, actual, rules))
    return result
