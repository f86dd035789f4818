"""A profile list export's side PETs: extra profile fields, and audience memberships as columns.

`user_fields_pet` holds up to 29 profile fields the list itself does not carry. `segments_pet`
holds one column per listed audience (up to 29), named after it upper-cased, set to
`member_value` or `non_member_value`. Both are PETs of the export's list, created when missing
(every column `field_type`), and written after the run's list batches, keyed by RIID (by
EMAIL_ADDRESS_ for a contact whose RIID the warehouse does not know yet).

What a PET still owes (its pending changes) is the difference with exports.pet_rows_sent, what
we last merged into it per contact, so a crash or a refused row only delays a row, never loses
it (rows a file import has not brought into the list yet are simply tried again):
- user fields: each contact merged into the list since its row was last written (the same
  recipients as the list merges), with the profile values of now;
- segments: each contact on the list through this export (merged in and not deleted) that has
  no row yet, or that has a change in **any** listed audience newer than the one its row
  reflects, even when its membership in the export's own audience did not change.

A PET that exists without a configured column: the column is left out of the rows, with a
warning in the run log and metadata, and the other columns are written. The `pet` export
refuses instead: there the PET is the destination and a missing column means it cannot do its
job. Here the list merge is the job and the PETs ride along: a PET column someone has yet to add
by hand must not hold the list back.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from responsys_assets.config import ProfileListExport
from responsys_assets.defs.exports.ledger import NOW
from responsys_assets.defs.exports.pet_tables import ensure_pet
from responsys_assets.defs.exports.records import as_text, chunks
from responsys_assets.lib.responsys import ResponsysError, classify
from responsys_assets.warehouse.retry import retried, with_retries
from responsys_assets.warehouse.transaction import rollback
from responsys_assets.warehouse.upsert import upsert


@dataclass(frozen=True)
class SidePet:
    role: str  # the config key: user_fields_pet | segments_pet
    name: str
    folder: str
    field_type: str
    columns: list[tuple[str, str]]  # (PET column, profile column or audience)


@dataclass
class OwedRow:
    contact_key: str
    riid: int | None
    email: str | None
    fields: dict[str, str]
    change_id: int | None = None


class ListPets:
    def __init__(self, export: ProfileListExport):
        self.export = export
        self.pets: list[SidePet] = []
        if export.user_fields_pet:
            cfg = export.user_fields_pet
            columns = list(cfg.fields.items())
            self.pets.append(
                SidePet(
                    "user_fields_pet",
                    cfg.name,
                    cfg.folder or export.folder,
                    cfg.field_type,
                    columns,
                )
            )
        if export.segments_pet:
            cfg = export.segments_pet
            columns = [(audience.upper(), audience) for audience in cfg.audiences]
            self.pets.append(
                SidePet(
                    "segments_pet", cfg.name, cfg.folder or export.folder, cfg.field_type, columns
                )
            )

    def sync(self, conn: duckdb.DuckDBPyConnection, client, report) -> None:
        """Write what each PET owes; a Responsys error stops the run (the rows stay owed)."""
        if self.pets and self.export.on_exit == "delete":
            # A deleted list member loses its PET rows in Responsys: forget ours, so a
            # re-entry writes them again.
            with_retries(
                lambda: conn.execute(
                    """
                    delete from exports.pet_rows_sent w
                    where w.export = ? and not exists (
                        select 1 from exports.last_sent s
                        where s.export = w.export and s.contact_key = w.contact_key)
                    """,
                    [self.export.name],
                ),
                what="forgetting side-PET rows of deleted members",
            )
        for pet in self.pets:
            try:
                self._sync(conn, client, pet, report)
            except ResponsysError as exc:
                report.errors[classify(exc)] += 1
                report.stopped_by = (
                    f"{type(exc).__name__} while writing {pet.role} '{pet.name}': {exc}; "
                    "its rows are written on the next run"
                )
                return

    def _sync(self, conn, client, pet: SidePet, report) -> None:
        export = self.export
        owed = (
            self.owed_user_fields(conn, pet)
            if pet.role == "user_fields_pet"
            else self.owed_segments(conn, pet)
        )
        stats = {"pet": pet.name, "rows_owed": len(owed), "rows_written": 0}
        report.details[pet.role] = stats
        if not owed:
            return
        live, missing = ensure_pet(
            client, export.list, pet.name, pet.folder, [c for c, _ in pet.columns], pet.field_type
        )
        report.api_calls += 1 if live else 3
        stats["created"] = live is None
        if missing:
            stats["dropped_columns"] = missing
            report.warnings.append(
                f"{pet.role} '{live.name}' of list '{export.list}' has no column "
                f"{', '.join(missing)}: left out of its rows, the other columns are written. "
                f"Add {', '.join(missing)} ({pet.field_type}) to the PET by hand in Responsys to "
                "send them (Responsys adds PET columns only by hand)."
            )
        dropped = {name.upper() for name in missing}
        columns = [c for c, _ in pet.columns if c.upper() not in dropped]
        if not columns:
            return
        by_riid = [r for r in owed if r.riid is not None]
        by_email = [r for r in owed if r.riid is None and r.email]
        waiting = len(owed) - len(by_riid) - len(by_email)
        failures: Counter = Counter()
        for match, key, group in (
            ("RIID", "RIID_", by_riid),
            ("EMAIL_ADDRESS", "EMAIL_ADDRESS_", by_email),
        ):
            names = [key, *columns]
            for chunk in chunks(group):
                identifier = [str(r.riid) if key == "RIID_" else r.email for r in chunk]
                results = client.merge_pet_members(
                    export.list,
                    pet.name,
                    names,
                    [
                        [ident, *(r.fields[c] for c in columns)]
                        for ident, r in zip(identifier, chunk, strict=True)
                    ],
                    match_column_1=match,
                    insert_on_no_match=True,
                    update_on_match="REPLACE_ALL",
                    async_mode=export.async_api,
                )
                report.api_calls += 1
                written = []
                for row, result in zip(chunk, results, strict=True):
                    if result.ok:
                        written.append(row)
                    else:
                        failures[result.error_code or result.message or "MERGEFAILED"] += 1
                _record(conn, export.name, pet.name, written, columns)
                stats["rows_written"] += len(written)
        if waiting:
            stats["rows_waiting_for_an_identifier"] = waiting
        if failures:
            stats["rows_refused"] = dict(failures)
            report.warnings.append(
                f"{pet.role} '{pet.name}': {sum(failures.values())} rows refused "
                f"({', '.join(f'{k}: {v}' for k, v in failures.most_common(3))}); they are tried "
                "again on the next run (RECIPIENT_NOT_FOUND is expected until a file import "
                "has brought the contact into the list)"
            )

    def owed_user_fields(self, conn, pet: SidePet) -> list[OwedRow]:
        """Contacts merged into the list since their user-fields row was last written."""
        cursor = conn.execute(
            """
            select s.contact_key, p.riid, p.email, p.*, sc.* exclude (contact_key, as_of)
            from exports.last_sent s
            left join audiences.profiles p on p.contact_key = s.contact_key
            left join audiences.scores sc on sc.contact_key = s.contact_key
            left join exports.pet_rows_sent w
              on w.export = s.export and w.pet = $pet and w.contact_key = s.contact_key
            where s.export = $export and (w.contact_key is null or w.sent_at < s.sent_at)
            order by s.contact_key
            """,
            {"export": self.export.name, "pet": pet.name.upper()},
        )
        names = [d[0] for d in cursor.description]
        owed = []
        for row in cursor.fetchall():
            profile = dict(zip(names[3:], row[3:], strict=True))
            fields = {column: as_text(profile.get(source)) for column, source in pet.columns}
            owed.append(OwedRow(row[0], row[1], row[2], fields))
        return owed

    def owed_segments(self, conn, pet: SidePet) -> list[OwedRow]:
        """List members with no segments row yet, or a listed-audience change newer than it."""
        cfg = self.export.segments_pet
        audiences = [audience for _, audience in pet.columns]
        rows = conn.execute(
            """
            with population as (
                select contact_key from exports.last_sent where export = $export
                union
                select contact_key from exports.pet_rows_sent
                where export = $export and pet = $pet and $exited_stay
            ),
            newest as (
                select contact_key, max(change_id) as change_id
                from audiences.membership_changes
                where list_contains($audiences, audience)
                group by contact_key
            ),
            member_of as (
                select contact_key, list(audience) as audiences
                from audiences.memberships
                where list_contains($audiences, audience)
                group by contact_key
            )
            select p.contact_key, pr.riid, pr.email, coalesce(n.change_id, 0),
                   coalesce(m.audiences, [])
            from population p
            left join newest n on n.contact_key = p.contact_key
            left join member_of m on m.contact_key = p.contact_key
            left join audiences.profiles pr on pr.contact_key = p.contact_key
            left join exports.pet_rows_sent w
              on w.export = $export and w.pet = $pet and w.contact_key = p.contact_key
            where w.contact_key is null or coalesce(n.change_id, 0) > coalesce(w.change_id, 0)
            order by p.contact_key
            """,
            {
                "export": self.export.name,
                "pet": pet.name.upper(),
                "exited_stay": self.export.on_exit != "delete",
                "audiences": audiences,
            },
        ).fetchall()
        owed = []
        for contact_key, riid, email, change_id, member_of in rows:
            fields = {
                column: cfg.member_value if audience in member_of else cfg.non_member_value
                for column, audience in pet.columns
            }
            owed.append(OwedRow(contact_key, riid, email, fields, change_id))
        return owed


@retried("recording side-PET rows")
def _record(conn, export: str, pet: str, rows: list[OwedRow], columns: list[str]) -> None:
    """Remember what was written, so the next run owes only what changed since."""
    if not rows:
        return
    conn.execute("begin transaction")  # also finishes any open result, which register() needs
    conn.register(
        "_pet_rows",
        pa.table(
            {
                "contact_key": [r.contact_key for r in rows],
                "fields": [json.dumps({c: r.fields[c] for c in columns}) for r in rows],
                "change_id": pa.array([r.change_id for r in rows], pa.int64()),
            }
        ),
    )
    try:
        upsert(
            conn,
            "exports.pet_rows_sent",
            ["export", "pet", "contact_key"],
            ["export", "pet", "contact_key", "fields", "change_id", "sent_at"],
            "select ?::varchar as export, ?::varchar as pet, contact_key, fields::json as fields,"
            f" change_id, {NOW} as sent_at from _pet_rows",
            [export, pet.upper()],
        )
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    finally:
        conn.unregister("_pet_rows")
