"""Parse one decrypted Connect file into typed frames for the warehouse, in bounded batches.

How it works, and why:
- The header is read first (delimiter configured or sniffed, BOM, UTF-8) and checked against the
  feed's layout; columns are found by name, so order and appended custom columns do not matter.
- The data is read in byte chunks of about `batch_rows` rows that end on a record boundary (a line
  break outside double quotes), so memory stays bounded whatever the file size.
- Each chunk is parsed by polars as strings with one spare column. A chunk is trusted when its
  physical line count equals its record count, the spare column is empty and the delimiters add
  up; otherwise (ragged rows, quoted line breaks, blank lines) that chunk goes through Python's
  csv module, which is slower but gives exact fields and line numbers. Responsys writes neither,
  so in practice every chunk takes the fast path.
- Strings are typed with vectorised polars expressions; a value that does not convert rejects
  its row with the raw text in the reason. The typed frame is then validated by the pandera
  contract (contracts.py) and its failure cases become rejected rows too.

Column mappings (header names are matched upper-cased and trimmed):
- events: RIID, CUSTOMER_ID, EMAIL (or COMPLAINER_EMAIL when there is no EMAIL), ACCOUNT_ID,
  LIST_ID, CAMPAIGN_ID, LAUNCH_ID, EVENT_CAPTURED_DT, EVENT_STORED_DT; event_type is the feed from
  the file name; every other column (EVENT_TYPE_ID included) goes to `attributes`.
- launch_states: the ids, CAMPAIGN_NAME, LAUNCH_NAME, LAUNCH_STATUS, LAUNCH_TYPE, SUBJECT and the
  four *_DT columns; the rest to `attributes`.
- contacts: RIID_, CUSTOMER_ID_, EMAIL_ADDRESS_ (trimmed, lower-cased), EMAIL_PERMISSION_STATUS_
  (trimmed, upper-cased), MODIFIED_DATE_ (Responsys date or ISO `YYYY-MM-DD HH:MM:SS`).
- Times are read in `timezone` and stored as naive UTC. In a DST fall-back hour the earlier
  instant is taken; a time inside a spring-forward gap does not exist and rejects the row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandera.errors
import polars as pl

from responsys_assets.defs.ingest.contracts import (
    RESPONSYS_DATE_FORMAT,
    column_order,
    contract_holds,
    schema_for,
)
from responsys_assets.lib.feeds import LAYOUTS, FeedLayout

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
DELIMITER_SETTING = "ingest.delimiter"
TIMEZONE_SETTING = "ingest.timezone"
BOM = b"\xef\xbb\xbf"
ISO_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_MAX_HEADER_BYTES = 1 << 20
_MAX_CHUNK_BYTES = 256 << 20
_SPARE = "__spare"
_LINE = "__line"
_REASON = "__reason"
_FAILED = "__failed"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}


class FileContractError(Exception):
    """The file as a whole cannot be parsed (header, delimiter, encoding); nothing of it loads."""


@dataclass(frozen=True)
class Header:
    """The header row: column names (upper-cased), the delimiter, and where the data starts."""

    columns: tuple[str, ...]
    delimiter: str
    has_bom: bool
    data_offset: int = 0


@dataclass
class ParsedBatch:
    """One batch of a file: typed rows for the target table and the rows that broke the contract.

    `events` has the target table's columns (responsys.events, launch_states or contacts).
    """

    events: pl.DataFrame
    rejected: pl.DataFrame
    data_rows: int


def _describe(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def _split_header(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter, quotechar='"'), [""])


def read_header(path: Path, delimiter: str | None = None) -> Header:
    """Read and check the header row; sniff the delimiter when none is configured."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(_MAX_HEADER_BYTES)
    has_bom = head.startswith(BOM)
    start = len(BOM) if has_bom else 0
    if len(head) <= start:
        raise FileContractError(f"{path.name}: the file is empty (expected a header row)")
    end = head.find(b"\n", start)
    if end < 0:
        if len(head) == _MAX_HEADER_BYTES:
            raise FileContractError(f"{path.name}: no line break in the first 1 MiB")
        end = len(head)
    try:
        text = head[start:end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise FileContractError(
            f"{path.name}: the header row is not UTF-8 text ({exc.reason} at byte "
            f"{start + exc.start}); Responsys Connect jobs must export UTF-8"
        ) from exc
    if not text.strip():
        raise FileContractError(f"{path.name}: the first line is blank (expected a header row)")

    splits = {d: _split_header(text, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: len(splits[d]))
    tried = ", ".join(_describe(d) for d in DELIMITERS)
    if delimiter is None:
        if len(splits[best]) < 2:
            raise FileContractError(
                f"{path.name}: could not find the delimiter of the header row (tried {tried}); "
                f"set `{DELIMITER_SETTING}` to the delimiter of the Connect job. "
                f"Header starts: {text[:120]!r}"
            )
        delimiter = best
    fields = splits[delimiter] if delimiter in splits else _split_header(text, delimiter)
    others = [d for d in DELIMITERS if d != delimiter and any(d in name for name in fields)]
    if others or len(fields) < 2:
        hint = (
            f"; it does split on {_describe(best)} into {len(splits[best])} columns"
            if len(splits[best]) > 1 and best != delimiter
            else ""
        )
        raise FileContractError(
            f"{path.name}: the header row does not fit the delimiter {_describe(delimiter)} "
            f"(tried {_describe(delimiter)}{hint}). Set `{DELIMITER_SETTING}` to the delimiter "
            f"of the Connect job (one of {tried}). Header starts: {text[:120]!r}"
        )
    columns = tuple(name.strip().upper() for name in fields)
    if "" in columns:
        raise FileContractError(f"{path.name}: the header row has an empty column name")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise FileContractError(f"{path.name}: duplicate columns in the header: {duplicates}")
    return Header(columns=columns, delimiter=delimiter, has_bom=has_bom, data_offset=end + 1)


def check_layout(header: Header, layout: FeedLayout, source_file: str) -> None:
    """Fail the file when a column the feed requires is not in the header."""
    missing = [c for c in layout.required if c not in header.columns]
    if missing:
        raise FileContractError(
            f"{source_file}: required column(s) {', '.join(missing)} missing for feed "
            f"{layout.feed}; columns found: {', '.join(header.columns)}"
        )


# --- typing: strings -> target columns ---------------------------------------------------------


def _blank_to_null(column: str) -> pl.Expr:
    return _blank_to_null_expr(pl.col(column))


def _blank_to_null_expr(value: pl.Expr) -> pl.Expr:
    return pl.when(value != "").then(value)


class _Typing:
    """Expressions that turn the string frame of one file into the target frame.

    Typing runs in two steps so nothing is computed twice: `typed` adds the target columns next
    to the strings, then each check is a cheap boolean over both. Reason texts are only built
    for the rows that fail.
    """

    def __init__(self, layout: FeedLayout, header: Header, source_file: str, timezone: str):
        self.columns = header.columns
        self.source_file = source_file
        self.typed: dict[str, pl.Expr] = {}
        self.checks: list[tuple[pl.Expr, pl.Expr]] = []  # (row fails, reason)
        self.source_of: dict[str, str] = {}  # target column -> header column, for messages
        used: set[str] = set()

        for column in layout.required:
            self.checks.append((pl.col(column) == "", pl.lit(f"{column}: missing required value")))

        def take(target: str, *candidates: str) -> str | None:
            for name in candidates:
                if name in self.columns:
                    used.add(name)
                    self.source_of[target] = name
                    return name
            return None

        def text(target: str, *candidates: str, clean: str = "") -> None:
            name = take(target, *candidates)
            if name is None:
                self.typed[target] = pl.lit(None, pl.String)
            elif clean == "lower":
                self.typed[target] = pl.col(name).str.strip_chars().str.to_lowercase()
                self.typed[target] = _blank_to_null_expr(self.typed[target])
            elif clean == "upper":
                self.typed[target] = pl.col(name).str.strip_chars().str.to_uppercase()
                self.typed[target] = _blank_to_null_expr(self.typed[target])
            else:
                self.typed[target] = _blank_to_null(name)

        def unconverted(target: str, name: str, message: pl.Expr) -> None:
            self.checks.append(((pl.col(name) != "") & pl.col(target).is_null(), message))

        def integer(target: str, source: str) -> None:
            name = take(target, source)
            if name is None:
                self.typed[target] = pl.lit(None, pl.Int64)
                return
            self.typed[target] = pl.col(name).cast(pl.Int64, strict=False)
            unconverted(target, name, pl.format(f"{name}: '{{}}' is not an integer", pl.col(name)))

        def timestamp(target: str, source: str, *, iso_too: bool = False) -> None:
            name = take(target, source)
            if name is None:
                self.typed[target] = pl.lit(None, pl.Datetime("us"))
                return
            naive = pl.col(name).str.to_datetime(
                RESPONSYS_DATE_FORMAT, strict=False, time_unit="us"
            )
            if iso_too:
                iso = pl.col(name).str.to_datetime(ISO_DATE_FORMAT, strict=False, time_unit="us")
                naive = pl.coalesce(naive, iso)
            utc = naive
            if timezone != "UTC":
                utc = (
                    naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
                    .dt.convert_time_zone("UTC")
                    .dt.replace_time_zone(None)
                )
            self.typed[target] = utc
            message = (
                pl.when(naive.is_null())
                .then(
                    pl.format(
                        f"{name}: '{{}}' is not a date like 03-Jan-2026 13:05:32", pl.col(name)
                    )
                )
                .otherwise(
                    pl.format(
                        f"{name}: '{{}}' does not exist in {timezone} (clock change)", pl.col(name)
                    )
                )
            )
            unconverted(target, name, message)

        if layout.target == "events":
            self.typed["event_type"] = pl.lit(layout.feed, pl.String)
            integer("riid", "RIID")
            text("customer_id", "CUSTOMER_ID")
            text("email", "EMAIL", "COMPLAINER_EMAIL")
            for target in ("account_id", "list_id", "campaign_id", "launch_id"):
                integer(target, target.upper())
            timestamp("event_captured_at", "EVENT_CAPTURED_DT")
            timestamp("event_stored_at", "EVENT_STORED_DT")
        elif layout.target == "launch_states":
            for target in ("account_id", "list_id", "campaign_id", "launch_id"):
                integer(target, target.upper())
            for target in ("campaign_name", "launch_name", "launch_status", "launch_type"):
                text(target, target.upper())
            text("subject", "SUBJECT")
            timestamp("event_captured_at", "EVENT_CAPTURED_DT")
            timestamp("event_stored_at", "EVENT_STORED_DT")
            timestamp("launch_started_at", "LAUNCH_STARTED_DT")
            timestamp("launch_completed_at", "LAUNCH_COMPLETED_DT")
        else:
            integer("riid", "RIID_")
            text("customer_id", "CUSTOMER_ID_")
            text("email", "EMAIL_ADDRESS_", clean="lower")
            text("email_permission_status", "EMAIL_PERMISSION_STATUS_", clean="upper")
            timestamp("modified_at", "MODIFIED_DATE_", iso_too=True)

        self.attributes = [c for c in self.columns if c not in used]
        self.typed["source_file"] = pl.lit(source_file, pl.String)
        self.typed["source_line"] = pl.col(_LINE)
        self.order = column_order(layout.target)
        self.schema = schema_for(layout.feed)

    def _attributes(self, raw: pl.DataFrame) -> pl.Expr:
        """A JSON object of the other columns, with empty values left out.

        Only columns that have an empty value in this batch get the (costly) null handling:
        they are encoded as null and the `"NAME":null` members are cut out afterwards. Inside a
        JSON string every quote is escaped, so the cut can only match a real member.
        """
        if not self.attributes:
            return pl.lit("{}", pl.String).alias("attributes")
        has_blank = raw.select(
            (pl.col(c) == "").any().alias(f"b{i}") for i, c in enumerate(self.attributes)
        ).row(0)
        fields = [
            _blank_to_null(c).alias(c) if blank else pl.col(c)
            for c, blank in zip(self.attributes, has_blank, strict=True)
        ]
        encoded = pl.struct(fields).struct.json_encode()
        for name, blank in zip(self.attributes, has_blank, strict=True):
            if blank:
                encoded = encoded.str.replace_all(f"{json.dumps(name)}:null,", "", literal=True)
        if has_blank[-1]:
            last = json.dumps(self.attributes[-1])
            encoded = encoded.str.replace_all(f",{last}:null}}", "}", literal=True)
            encoded = encoded.str.replace_all(f"{{{last}:null}}", "{}", literal=True)
        return encoded.alias("attributes")

    def apply(self, raw: pl.DataFrame, delimiter: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Typed rows and rejected rows of one string frame (header columns + line numbers)."""
        wide = raw.with_columns(expr.alias(name) for name, expr in self.typed.items())
        failed = (
            pl.any_horizontal(mask for mask, _ in self.checks) if self.checks else pl.lit(False)
        )
        typed = wide.select(
            *(self._attributes(raw) if c == "attributes" else pl.col(c) for c in self.order),
            failed.alias(_FAILED),
        )
        rejected: list[pl.DataFrame] = []
        bad = typed.get_column(_FAILED)
        if bad.any():
            reasons = wide.filter(bad).select(
                pl.concat_str(
                    [pl.when(mask).then(message) for mask, message in self.checks],
                    separator="; ",
                    ignore_nulls=True,
                )
            )
            rejected.append(self._rejected(raw.filter(bad), reasons.to_series(), delimiter))
            raw, typed = raw.filter(~bad), typed.filter(~bad)
        typed = typed.drop(_FAILED)
        try:
            if not contract_holds(self.schema, typed):
                self.schema.validate(typed, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            failures = exc.failure_cases
            if failures.get_column("index").null_count():
                raise  # a frame-level failure is a bug in this module, not in the file
            reasons = self._contract_reasons(failures, raw)
            positions = reasons.get_column("index")
            broken = pl.int_range(typed.height, eager=True, dtype=pl.Int64).is_in(positions)
            rejected.append(
                self._rejected(raw.filter(broken), reasons.get_column(_REASON), delimiter)
            )
            typed = typed.filter(~broken)
        if rejected:
            return typed, pl.concat(rejected).sort("source_line")
        return typed, pl.DataFrame(schema=REJECTED_SCHEMA)

    def _contract_reasons(self, failures: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        """One reason per failing row, naming the header column and its raw value."""
        rows = []
        for index, column, check in failures.select("index", "column", "check").iter_rows():
            source = self.source_of.get(column, column)
            value = raw.get_column(source)[index] if source in raw.columns else None
            if check == "not_nullable":
                rows.append((index, f"{source}: missing required value"))
            else:
                rows.append((index, f"{source}: '{value}' {check}"))
        return (
            pl.DataFrame(rows, schema={"index": pl.Int64, _REASON: pl.String}, orient="row")
            .group_by("index", maintain_order=True)
            .agg(pl.col(_REASON).str.join("; "))
            .with_columns(pl.col("index").cast(pl.Int64))
            .sort("index")
        )

    def _rejected(self, raw: pl.DataFrame, reasons: pl.Series, delimiter: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "source_file": pl.repeat(self.source_file, raw.height, eager=True),
                "source_line": raw.get_column(_LINE),
                "reason": reasons,
                "raw": raw.select(pl.concat_str(self.columns, separator=delimiter)).to_series(),
            },
            schema=REJECTED_SCHEMA,
        )


# --- reading: bytes -> string frames ----------------------------------------------------------


def _record_end(block: bytes, odd: bool) -> int:
    """Offset after the last line break outside quotes; -1 if none.

    `odd` says whether the bytes before `block` (the carried partial record) hold an odd
    number of double quotes.
    """
    end = block.rfind(b"\n")
    if end < 0:
        return -1
    if b'"' not in block:
        return -1 if odd else end + 1
    quotes = block.count(b'"', 0, end) + odd
    while quotes % 2:
        previous = block.rfind(b"\n", 0, end)
        if previous < 0:
            return -1
        quotes -= block.count(b'"', previous, end)
        end = previous
    return end + 1


def _chunks(
    f: io.BufferedReader, chunk_bytes: int, prefix: bytes, source_file: str
) -> Iterator[bytes]:
    """`prefix` + a run of whole records, about `chunk_bytes` long, until the file ends.

    Each block is copied once (into the joined result); the last chunk may lack a final line
    break. A record longer than a block is carried over to the next read.
    """
    rest = b""
    while True:
        block = f.read(chunk_bytes)
        if not block:
            if rest:
                yield prefix + rest
            return
        cut = _record_end(block, rest.count(b'"') % 2 == 1)
        if cut < 0:
            rest += block
            if len(rest) > _MAX_CHUNK_BYTES:
                raise FileContractError(
                    f"{source_file}: no record ends within {_MAX_CHUNK_BYTES >> 20} MiB; "
                    "an unbalanced double quote makes the rest of the file one field"
                )
            continue
        joined = [b"".join((prefix, rest, memoryview(block)[:cut]))]
        rest = block[cut:]
        del block  # memory: the caller should hold the only copy of this chunk
        yield joined.pop()


def _not_utf8(source_file: str, chunk: bytes, first_line: int) -> FileContractError:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + chunk.count(b"\n", 0, exc.start)
        return FileContractError(
            f"{source_file}: line {line} is not UTF-8 text ({exc.reason}); "
            "Responsys Connect jobs must export UTF-8"
        )
    return FileContractError(f"{source_file}: not UTF-8 text near line {first_line}")


def _fast_frame(
    data: bytes, header: Header, prefix_len: int, newlines: int, first_line: int
) -> pl.DataFrame | None:
    """Parse a chunk with polars; None when the chunk is irregular and needs the exact path.

    `data` starts with a synthetic header of width + 1 columns, so a row with extra fields
    shows in the spare column. Short rows are found by accounting: in a chunk without quotes,
    its bytes are the field bytes plus the delimiters and line ends; with quotes, the delimiter
    bytes are (width - 1) per row plus those inside values.
    """
    width = len(header.columns)
    frame = pl.read_csv(
        data,
        separator=header.delimiter,
        quote_char='"',
        infer_schema=False,
        truncate_ragged_lines=True,
        empty_string_is_null=False,
    )
    lines = newlines + (0 if data.endswith(b"\n") else 1)
    if frame.height != lines or frame.width != width + 1:
        return None
    spare = frame.get_column(frame.columns[-1])
    if (spare != "").any():
        return None
    frame = frame.drop(frame.columns[-1])
    if data.find(b'"', prefix_len) < 0:
        field_bytes = frame.select(pl.sum_horizontal(pl.all().str.len_bytes().sum())).item()
        line_ends = newlines
        if data.find(b"\r", prefix_len) >= 0:
            line_ends += data.count(b"\r\n")
        delimiters = len(data) - prefix_len - field_bytes - line_ends
        in_values = 0
    else:
        delimiters = data.count(header.delimiter.encode()) - width
        in_values = frame.select(
            pl.sum_horizontal(pl.all().str.count_matches(header.delimiter, literal=True)).sum()
        ).item()
    if delimiters != frame.height * (width - 1) + in_values:
        return None
    frame.columns = list(header.columns)
    return frame.with_columns(
        pl.int_range(first_line, first_line + frame.height, dtype=pl.Int64).alias(_LINE)
    )


def _exact_frame(
    chunk: bytes, header: Header, first_line: int, source_file: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse an irregular chunk with the csv module: exact fields and physical line numbers."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(source_file, chunk, first_line) from None
    width = len(header.columns)
    reader = csv.reader(io.StringIO(text, newline="\n"), delimiter=header.delimiter, strict=False)
    good: list[list[str]] = []
    good_lines: list[int] = []
    bad: list[tuple[str, int, str, str]] = []
    while True:
        line = first_line + reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            break
        if not row:
            continue  # a blank line carries no data
        if len(row) == width:
            good.append(row)
            good_lines.append(line)
        else:
            reason = f"row has {len(row)} fields, the header has {width}"
            bad.append((source_file, line, reason, header.delimiter.join(row)))
    columns = list(zip(*good, strict=True)) if good else [() for _ in header.columns]
    frame = pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(header.columns, columns, strict=True)
        }
    ).with_columns(pl.Series(_LINE, good_lines, dtype=pl.Int64))
    return frame, pl.DataFrame(bad, schema=REJECTED_SCHEMA, orient="row")


def _chunk_bytes(f: io.BufferedReader, offset: int, batch_rows: int) -> int:
    """Bytes per chunk for about `batch_rows` rows, from the line lengths at the start."""
    f.seek(offset)
    sample = f.read(1 << 20)
    f.seek(offset)
    per_line = len(sample) / max(sample.count(b"\n"), 1)
    return int(min(max(batch_rows * per_line, 256), _MAX_CHUNK_BYTES // 2))


def parse_event_file(
    path: Path,
    *,
    source_file: str,
    feed: str,
    delimiter: str | None = None,
    timezone: str = "UTC",
    batch_rows: int = 500_000,
) -> Iterator[ParsedBatch]:
    """Parse a decrypted Connect file in batches of about `batch_rows` rows.

    Raises FileContractError for file-level problems (before any batch for header problems;
    a non-UTF-8 byte later in the file raises when its batch is reached, so load per file in
    one transaction). `feed` is the token from the file name (feeds.parse_file_name).
    """
    if feed not in LAYOUTS:
        raise ValueError(f"no layout for feed {feed!r}; known feeds: {sorted(LAYOUTS)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r} (setting `{TIMEZONE_SETTING}`)") from exc
    layout = LAYOUTS[feed]
    header = read_header(Path(path), delimiter)
    check_layout(header, layout, source_file)
    typing = _Typing(layout, header, source_file, timezone)
    width = len(header.columns)
    spare_header = (header.delimiter.join(f"c{i}" for i in range(width + 1)) + "\n").encode()

    with Path(path).open("rb") as f:
        chunk_bytes = _chunk_bytes(f, header.data_offset, batch_rows)
        f.seek(header.data_offset)
        first_line = 2
        for data in _chunks(f, chunk_bytes, spare_header, source_file):
            newlines = data.count(b"\n") - 1
            try:
                frame = _fast_frame(data, header, len(spare_header), newlines, first_line)
            except pl.exceptions.ComputeError as exc:
                if "utf-8" in str(exc).lower():
                    raise _not_utf8(source_file, data[len(spare_header) :], first_line) from None
                raise FileContractError(
                    f"{source_file}: the CSV between lines {first_line} and "
                    f"{first_line + newlines - 1} cannot be read ({str(exc).splitlines()[0]}); "
                    "an unbalanced double quote is the usual cause. Nothing from this file "
                    "was loaded: fix or re-export it, then re-materialise the partition."
                ) from None
            ragged = pl.DataFrame(schema=REJECTED_SCHEMA)
            if frame is None:
                body = data[len(spare_header) :]
                frame, ragged = _exact_frame(body, header, first_line, source_file)
                del body
            del data  # memory: hold only the typed frames while the caller works
            first_line += newlines
            data_rows = frame.height + ragged.height
            if data_rows == 0:
                continue
            events, rejected = typing.apply(frame, header.delimiter)
            del frame
            if ragged.height:
                rejected = pl.concat([ragged, rejected]).sort("source_line")
            yield ParsedBatch(events=events, rejected=rejected, data_rows=data_rows)
