"""Raw checks of what an export delivered: whole sources and days, customers, keys, consent (issue 22).

Each fault here passes every column rule, yet the loop would decide on it: an orders export that arrived
empty or was yesterday's file again (revenue of a channel gone), a day of rows never exported, orders
whose member ids the export's join lost (every customer's history thinner), receipt ids that collide
(staging keeps one of each pair), a consents file filtered by status (members who opted out messaged, or
nobody reachable), sends to members who had opted out (a consent violation), a file cut off mid-row.

Like ``expectations.decisions`` they compare a batch with what was already published (the rows of files
loaded up to the last publication) and say ``not judged`` where there is nothing to compare with or too
few rows to tell a fault from chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from scipy.stats import binomtest

from campaign_loop.config import Settings
from expectations.load_log import _columns, _live, _loaded
from expectations.raw import batch_window
from expectations.results import CheckResult
from ingest.contract import TRANSACTION_SOURCES

# The customer key of a transaction, and the document type that tells a sale from a credit note.
IDENTIFIED: dict[str, str | None] = {"orders": "order_type", "pos_receipts": "receipt_type"}
# Per single-column key: the content two rows with that key must share. A later status of the same order
# is a legitimate update; another customer, time, amount or type is another document under the same id.
KEY_CONTENT: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders": ("order_id", ("member_id", "ordered_at", "total_amount", "order_type")),
    "pos_receipts": ("receipt_id", ("store_id", "member_id", "purchased_at", "total_amount", "receipt_type")),
    "events": ("event_id", ("event_type", "occurred_at", "member_id", "cookie_id", "device_id")),
    "coupon_redemptions": ("redemption_id", ("coupon_code", "redeemed_at", "discount_amount")),
    "reviews": ("review_id", ("product_id", "rating", "reviewed_at")),
}
# A reader's own words for a row cut short: what the last row of a truncated file gets quarantined with.
TRUNCATION_ERRORS = ("MISSING COLUMNS", "UNQUOTED VALUE", "INVALID UNICODE", "INVALID STATE")


def _published_batches(con: duckdb.DuckDBPyConnection, published_at: datetime) -> list[str]:
    return [b for (b,) in con.execute(
        "SELECT DISTINCT batch FROM raw._load_log WHERE superseded_by IS NULL AND loaded_at <= ? ORDER BY 1",
        [published_at]).fetchall()]


# --- 1. a source that stopped arriving ----------------------------------------------------------------

def check_source_missing(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, critical: Sequence[str],
    lookback: int,
) -> list[CheckResult]:
    """Sources with loaded rows in each of the last ``lookback`` published batches and none in this one.

    No file, a file with a header only, or yesterday's file again (recognised by its bytes and skipped):
    the source's rows of the week are missing. Critical for the sources revenue, customers' histories,
    customers' purchases rest on (``critical``: the transaction headers); a warning for the rest (lines
    are optional, a week without a campaign sends no sends, an unchanged catalogue no products). When no
    transaction source has rows the week is for ``empty_week`` and ``transactions_present`` to judge: a
    closed holiday week is not an export fault.
    """
    if published_at is None:
        return []
    history = _published_batches(con, published_at)[-lookback:]
    if not history:
        return []
    # A warning-level source needs two published batches before its absence means anything: the first
    # batch of a home often carries what later comes only on change (the catalogue, the campaigns).
    watched = set(critical) if len(history) < 2 else None
    marks = ", ".join("?" for _ in history)
    expected = {s for (s,) in con.execute(
        f"""SELECT source FROM raw._load_log WHERE superseded_by IS NULL AND batch IN ({marks})
            GROUP BY source HAVING count(DISTINCT batch) FILTER (WHERE rows_loaded > 0) = ?""",
        [*history, len(history)]).fetchall()}
    now = dict(con.execute(
        "SELECT source, coalesce(sum(rows_loaded), 0) FROM raw._load_log WHERE superseded_by IS NULL AND batch = ? "
        "GROUP BY 1", [batch]).fetchall())
    if not any(now.get(s, 0) > 0 for s in TRANSACTION_SOURCES):
        return []  # no file, or no transaction: the week is transaction_checks' to judge (empty_week)
    checks = []
    for source in sorted(expected):
        if watched is not None and source not in watched:
            continue
        rows = int(now.get(source, 0))
        severity = "critical" if source in critical else "warning"
        what = "no file" if source not in now else "files without a loaded row"
        details = (f"batch {batch}: {rows:,} {source} rows" if rows else
                   f"batch {batch}: {what} for {source}, which had rows in each of the published batches "
                   f"{history[0]}..{history[-1]}: its export failed, was empty or re-sent an earlier file")
        checks.append(CheckResult("source_missing", f"raw.{source}", None, severity, rows > 0, float(rows), 1.0,
                                  details))
    return checks


# --- 2. a day without rows ------------------------------------------------------------------------------

def check_day_gap(
    con: duckdb.DuckDBPyConnection, settings: Settings, batch: str, *, sources: dict[str, str],
    severity: dict[str, str], share_min: float, min_rows: int,
) -> list[CheckResult]:
    """Per source, the batch's rows per day of its window; a day under ``share_min`` of the median day.

    A day of orders missing is a day of revenue, conversions and lift gone: critical. A day of clickstream
    or store receipts is a warning (``severity``): sessions are features among many, and stores close on
    holidays. Fewer than ``min_rows`` rows on the median day: not judged (a small shop's quiet day).

    A closed business cannot be told from a lost export by one source's rows alone, so:
    - the days of ``settings.closed_dates`` are not judged;
    - a weekday the source's previous weeks hardly ever trade on (a shop closed on Saturdays) is no gap: each
      weekday is judged only if it trades in the history (live rows of the ``HISTORY_WEEKS`` before the
      batch, whatever their batch); with fewer than ``HISTORY_WEEKS_MIN`` weeks of it, a gap is a warning;
    - a gap is at its source's severity only when another source traded normally that day (the business was
      open, this export lost the day); when no other source did (an orders-only export, a holiday closure,
      an export that ends mid-week) it is a warning that names ``closed_dates``. A real gift shop's export,
      closed over Christmas, was blocked every week before this.
    """
    try:
        start, end = batch_window(settings, batch)
    except ValueError:
        return []  # an export's own batch id: no window to count days in
    columns = _columns(con)
    days = (end - start).days
    closed = {(d - start.date()).days for d in settings.closed_dates}
    counts: dict[str, dict[int, int]] = {}
    for source, at in sources.items():
        if at not in columns.get(source, set()) or days < 2:
            continue
        counts[source] = {int(d): int(n) for d, n in con.execute(
            f"""SELECT date_diff('day', CAST(? AS TIMESTAMP), {at}) AS d, count(*) FROM raw.{source} r
                WHERE _batch = ? AND {_live()} AND {at} >= ? AND {at} < ? GROUP BY 1""",
            [start, batch, start, end]).fetchall()}
    medians = {s: sorted(c.get(d, 0) for d in range(days))[days // 2] for s, c in counts.items()}

    def open_elsewhere(source: str, day: int) -> list[str]:
        return [other for other, c in counts.items() if other != source and medians[other] >= min_rows
                and c.get(day, 0) >= share_min * medians[other]]

    checks = []
    for source, per_day in counts.items():
        at, median, table = sources[source], medians[source], f"raw.{source}"
        if median < min_rows:
            checks.append(CheckResult("day_gap", table, at, severity.get(source, "warning"), True, None, share_min,
                                      f"batch {batch}: median {median} {source} rows a day, {min_rows} needed: "
                                      "not judged"))
            continue
        trading, weeks = _trading_weekdays(con, source, at, start, share_min)
        judged = [d for d in range(days) if d not in closed
                  and (trading is None or (start + timedelta(days=d)).isoweekday() in trading)]
        low = [d for d in judged if per_day.get(d, 0) < share_min * median]
        worst = min((per_day.get(d, 0) for d in judged), default=median) / median
        details = (f"batch {batch}: fewest {source} rows on a trading day {worst:.1%} of the median day ({median:,}); "
                   f"{weeks} weeks of history")
        witnesses = {d: open_elsewhere(source, d) for d in low}
        level = "warning"
        if any(witnesses.values()) and weeks >= HISTORY_WEEKS_MIN:
            level = severity.get(source, "warning")
        for d in low:
            day = (start + timedelta(days=d)).date().isoformat()
            if witnesses[d]:
                details += f"; {day}: under {share_min:.0%} of it while {', '.join(witnesses[d])} traded: the day's export is missing"
            else:
                details += (f"; {day}: under {share_min:.0%} of it and no other source traded: a closure (add it "
                            "to closed_dates) or every export of the day lost")
        checks.append(CheckResult("day_gap", table, at, level, not low, round(worst, 6), share_min, details))
    return checks


HISTORY_WEEKS = 8
HISTORY_WEEKS_MIN = 4


def _trading_weekdays(
    con: duckdb.DuckDBPyConnection, source: str, at: str, start: datetime, share_min: float,
) -> tuple[set[int] | None, int]:
    """The ISO weekdays the source trades on in the weeks before ``start`` (None: no history) and how many
    weeks with rows that history holds."""
    rows = con.execute(
        f"""SELECT isodow({at}) AS dow, count(*) AS n FROM raw.{source} r WHERE {_live()} AND {at} >= ? AND {at} < ? GROUP BY 1""",
        [start - timedelta(weeks=HISTORY_WEEKS), start]).fetchall()
    weeks = con.execute(
        f"""SELECT count(DISTINCT date_trunc('week', {at})) FROM raw.{source} r
            WHERE {_live()} AND {at} >= ? AND {at} < ?""",
        [start - timedelta(weeks=HISTORY_WEEKS), start]).fetchone()[0]
    if not rows or not weeks:
        return None, 0
    per_weekday = {int(dow): n / weeks for dow, n in rows}
    typical = sorted(per_weekday.get(d, 0.0) for d in range(1, 8))[3]
    return {d for d in range(1, 8) if per_weekday.get(d, 0.0) >= share_min * typical}, int(weeks)


# --- 3. customers lost -----------------------------------------------------------------------------------

def check_identity(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, drop_max: float, z_min: float,
    min_rows: int, severity: str = "critical",
) -> list[CheckResult]:
    """Share of the batch's sales with a member_id vs the published history's.

    A guest purchase is valid, but a drop of the identified share (a column renamed, a join in the export
    that lost its members) silently thins every customer's history: recency, frequency and CLV fall, and
    the next plan targets the wrong people. Failed when the drop exceeds ``drop_max`` and ``z_min``
    standard errors of the history's share (a small batch's share varies by chance).
    """
    if published_at is None:
        return []
    columns = _columns(con)
    checks = []
    for source, type_col in IDENTIFIED.items():
        have = columns.get(source, set())
        if "member_id" not in have or "_batch" not in have:
            continue
        sale = f"coalesce(lower(trim({type_col})), 'sale') = 'sale'" if type_col in have else "TRUE"
        row = con.execute(
            f"""SELECT avg((member_id IS NOT NULL)::INT) FILTER (WHERE _batch = ?),
                       count(*) FILTER (WHERE _batch = ?),
                       avg((member_id IS NOT NULL)::INT) FILTER (WHERE {_loaded('r', after=False)}),
                       count(*) FILTER (WHERE {_loaded('r', after=False)})
                FROM raw.{source} r WHERE {_live()} AND {sale}""",
            [batch, batch, published_at, published_at]).fetchone()
        share, n, before, n_before = row
        table = f"raw.{source}"
        if not n or n < min_rows or not n_before or before is None:
            checks.append(CheckResult("identity_share", table, "member_id", severity, True, share, drop_max,
                                      f"batch {batch}: {n or 0} sales, {min_rows} needed: not judged"))
            continue
        drop = float(before) - float(share)
        se = max((float(before) * (1 - float(before)) / n) ** 0.5, 1e-9)
        ok = not (drop > drop_max and drop / se > z_min)
        details = (f"batch {batch}: {share:.1%} of {n:,} {source} sales carry a member_id, the published "
                   f"history {before:.1%} of {n_before:,}")
        if not ok:
            details += (f": {drop:.1%} fewer ({drop / se:.1f} standard errors); a renamed member_id column "
                        "or a broken join in the export turned members into guests")
        checks.append(CheckResult("identity_share", table, "member_id", severity, ok, round(float(share), 6),
                                  drop_max, details))
    return checks


# --- 4. one key, two documents ---------------------------------------------------------------------------

def check_key_conflicts(
    con: duckdb.DuckDBPyConnection, batch: str, *, share_max: float, severity: str = "critical",
) -> list[CheckResult]:
    """Share of the batch's keys that name live rows with different content (``KEY_CONTENT``).

    Staging keeps one row per key, so two documents under one id (receipt numbers per store, ids an
    export reuses) lose one of them: its revenue, its customer's purchase. A re-sent row is the same
    content and the ``duplicate_rate`` warning's; a status update of an order keeps its content.
    """
    columns = _columns(con)
    checks = []
    for source, (key, content) in KEY_CONTENT.items():
        have = columns.get(source, set())
        if key not in have or "_batch" not in have:
            continue
        fields = [c for c in content if c in have]
        signature = "md5(concat_ws('|', " + ", ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in fields) + "))"
        total, conflicting, example = con.execute(
            f"""WITH mine AS (SELECT DISTINCT {key} AS k FROM raw.{source} r WHERE _batch = ? AND {_live()}
                              AND {key} IS NOT NULL),
                     versions AS (SELECT {key} AS k, count(DISTINCT {signature}) AS n FROM raw.{source} r
                                  WHERE {_live()} AND {key} IN (SELECT k FROM mine) GROUP BY 1)
                SELECT (SELECT count(*) FROM mine), count(*) FILTER (WHERE n > 1), min(k) FILTER (WHERE n > 1)
                FROM versions""",
            [batch]).fetchone()
        if not total:
            continue
        share = conflicting / total
        ok = share <= share_max
        details = f"batch {batch}: {conflicting:,} of {total:,} {key}s name rows of different content"
        if conflicting:
            details += f" (e.g. {example}: {', '.join(fields)} differ)"
        if not ok:
            details += "; staging would keep one document per id and lose the others"
        checks.append(CheckResult("key_conflicts", f"raw.{source}", key, severity, ok, round(share, 6), share_max,
                                  details))
    return checks


# --- 4b. lines that no longer add up to their document -----------------------------------------------------

# A transaction header, its lines, the id joining them, and the header's amounts outside its lines.
LINED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "orders": ("order_lines", "order_id", ("shipping_amount",)),
    "pos_receipts": ("pos_receipt_lines", "receipt_id", ()),
}


def _lines_sql(source: str, lines: str, key: str, adds: str, sale: str, discount: str) -> str:
    """The documents with lines and those whose lines do not add up; ``{scope_h}``/``{scope_l}`` left open."""
    return f"""WITH h AS (SELECT {key} AS k, any_value(TRY_CAST(total_amount AS DOUBLE)) AS total,
                                any_value({adds}) AS extra
                         FROM raw.{source} h WHERE {_live('h')} AND {{scope_h}} {sale} GROUP BY 1),
                   l AS (SELECT {key} AS k, sum(TRY_CAST(quantity AS DOUBLE) * TRY_CAST(unit_price AS DOUBLE)
                                                - {discount}) AS net
                         FROM raw.{lines} l WHERE {_live('l')} AND {{scope_l}} GROUP BY 1)
              SELECT count(*), count(*) FILTER (WHERE abs(total - net - extra) > greatest(0.01, ? * abs(total))),
                     min(k) FILTER (WHERE abs(total - net - extra) > greatest(0.01, ? * abs(total)))
              FROM h JOIN l USING (k) WHERE total IS NOT NULL"""


def _mismatched(con: duckdb.DuckDBPyConnection, sql: str, scope: str, params: list[Any],
                tolerance: float) -> tuple[int, int, str | None]:
    query = sql.replace("{scope_h}", scope.format(a="h")).replace("{scope_l}", scope.format(a="l"))
    row = con.execute(query, [*params, *params, tolerance, tolerance]).fetchone()
    return int(row[0]), int(row[1]), row[2]


def check_lines_match(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, shift_max: float,
    tolerance: float, min_rows: int, severity: str = "critical",
) -> list[CheckResult]:
    """Share of the batch's sales whose lines do not add up to the total, vs the published history's share.

    A document matches when ``total = sum(quantity * unit_price - line discount) + shipping`` within
    ``tolerance`` of the total (and a cent). Only documents with lines in the batch are judged (lines are
    optional in the contract). Compared with the history rather than required exact: an export whose totals
    carry what its lines do not (tax, gift wrap, rounding) shows that as a steady share in its history; a
    line query that lost rows raises it at once, and every basket, product and margin feature built from
    the lines undercounts. observed = the batch's share minus the history's; above ``shift_max``: failed.
    """
    columns = _columns(con)
    checks = []
    for source, (lines, key, extra) in LINED.items():
        have, line_have = columns.get(source, set()), columns.get(lines, set())
        if not {key, "total_amount", "_batch"} <= have or not {key, "quantity", "unit_price", "_batch"} <= line_have:
            continue
        type_col = next((t for t in ("order_type", "receipt_type") if t in have), None)
        sale = f"AND coalesce(lower(trim(h.{type_col})), 'sale') = 'sale'" if type_col else ""
        adds = " + ".join(f"coalesce(TRY_CAST(h.{c} AS DOUBLE), 0)" for c in extra if c in have) or "0"
        discount = "coalesce(TRY_CAST(l.discount_amount AS DOUBLE), 0)" if "discount_amount" in line_have else "0"

        sql = _lines_sql(source, lines, key, adds, sale, discount)
        table = f"raw.{source}"
        n, bad, example = _mismatched(con, sql, "{a}._batch = ?", [batch], tolerance)
        if n < min_rows:
            checks.append(CheckResult("lines_match", table, "total_amount", severity, True, None, shift_max,
                                      f"batch {batch}: {n} {source} with lines, {min_rows} needed: not judged"))
            continue
        if published_at is None:
            base_n, base_bad = 0, 0
        else:
            base_n, base_bad, _ = _mismatched(con, sql, _loaded("{a}", after=False), [published_at], tolerance)
        base = base_bad / base_n if base_n else 0.0
        now = bad / n
        ok = now - base <= shift_max
        details = (f"batch {batch}: {bad:,} of {n:,} {source} ({now:.1%}) have lines that do not add up to "
                   f"total_amount (within {tolerance:.1%}); published history: {base:.1%} of {base_n:,}")
        if bad:
            details += f" (e.g. {key} {example})"
        if not ok:
            details += f"; lines lost from {lines}: baskets, products and margins built from them undercount"
        checks.append(CheckResult("lines_match", table, "total_amount", severity, ok, round(now - base, 6),
                                  shift_max, details))
    return checks


# --- 5. consents filtered by status ----------------------------------------------------------------------

def check_consent_mix(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, p_min: float, p_warn: float,
    shift_min: float, min_rows: int, severity: str = "critical",
) -> list[CheckResult]:
    """The batch's share of opt-outs among its consent changes vs the published history's.

    Unsubscribe-link rows are left out (their number follows the campaign's size). An export filtered to
    opt-ins messages members who opted out; one that wrote opt_out on every row leaves nobody to reach.
    Failed when the shares differ by more than ``shift_min`` and a binomial test puts the batch's count
    below ``p_min`` under the history's share; below ``p_warn`` only, a warning (too few rows to block on).
    """
    have = _columns(con).get("consents", set())
    if published_at is None or not {"status", "_batch"} <= have:
        return []
    changes = "coalesce(lower(trim(source)), '') <> 'unsubscribe_link'" if "source" in have else "TRUE"
    out, n, before, n_before = con.execute(
        f"""SELECT count(*) FILTER (WHERE _batch = ? AND status = 'opt_out'), count(*) FILTER (WHERE _batch = ?),
                   avg((status = 'opt_out')::INT) FILTER (WHERE {_loaded('r', after=False)}),
                   count(*) FILTER (WHERE {_loaded('r', after=False)})
            FROM raw.consents r WHERE {_live()} AND {changes}""",
        [batch, batch, published_at, published_at]).fetchone()
    if n < min_rows or not n_before or before is None:
        return [CheckResult("consent_mix", "raw.consents", "status", severity, True, None, shift_min,
                            f"batch {batch}: {n} consent changes, {min_rows} needed: not judged")]
    share = out / n
    p = binomtest(int(out), int(n), min(max(float(before), 1e-6), 1 - 1e-6)).pvalue
    shifted = abs(share - float(before)) > shift_min
    # Too few changes to block on (a small shop's week) can still be too one-sided to let pass unseen.
    level = severity if p < p_min else "warning"
    ok = not (shifted and p < p_warn)
    details = (f"batch {batch}: {share:.1%} of {n:,} consent changes are opt-outs, the published history "
               f"{float(before):.1%} of {n_before:,} (binomial p = {p:.2g})")
    if not ok:
        details += (": an export filtered by status (opt-outs left out, or opt_out written on every row); "
                    "the next plan would message members who opted out, or nobody")
        if level == "warning":
            details += f" - too few changes to block on (p >= {p_min:g}): check the export"
    return [CheckResult("consent_mix", "raw.consents", "status", level, ok, round(share, 6), shift_min, details)]


# --- 6. sends without consent ------------------------------------------------------------------------------

def check_consent_violation(con: duckdb.DuckDBPyConnection, batch: str, severity: str = "critical") -> list[CheckResult]:
    """Sends of the batch to a member whose consent on the campaign's channel was opt_out when it started.

    The consent is the member's latest live consents row for the channel changed at or before the
    campaign's ``starts_at`` (later changes bind from the next campaign on: a plan is made from the
    consents it saw). One send is a violation of the member's choice, and of the law in most markets.
    """
    columns = _columns(con)
    if not ({"campaign_id", "member_id", "sent_at", "_batch"} <= columns.get("campaign_sends", set())
            and {"campaign_id", "channel", "starts_at"} <= columns.get("campaigns", set())
            and {"member_id", "channel", "status", "changed_at"} <= columns.get("consents", set())):
        return []
    n, sends, example = con.execute(
        f"""WITH campaign AS (
                SELECT campaign_id, arg_max(lower(trim(channel)), _loaded_at) AS channel,
                       arg_max(starts_at, _loaded_at) AS starts_at
                FROM raw.campaigns r WHERE {_live()} GROUP BY 1
            ), sent AS (
                SELECT DISTINCT s.member_id, c.channel, c.starts_at, s.campaign_id
                FROM raw.campaign_sends s JOIN campaign c USING (campaign_id)
                WHERE s._batch = ? AND {_live('s')} AND s.sent_at IS NOT NULL
            ), consent AS (
                SELECT member_id, lower(trim(channel)) AS channel, changed_at, lower(trim(status)) AS status
                FROM raw.consents r WHERE {_live()}
            ), state AS (
                SELECT s.campaign_id, s.member_id, arg_max(k.status, k.changed_at) AS status
                FROM sent s JOIN consent k ON k.member_id = s.member_id AND k.channel = s.channel
                     AND k.changed_at <= s.starts_at
                GROUP BY 1, 2
            )
            SELECT count(*) FILTER (WHERE status = 'opt_out'), (SELECT count(*) FROM sent),
                   min(member_id || ' in ' || campaign_id) FILTER (WHERE status = 'opt_out')
            FROM state""",
        [batch]).fetchone()
    details = f"batch {batch}: {n:,} of {sends:,} sends went to members opted out of the campaign's channel"
    if n:
        details += f" when it started (e.g. {example}): a consent violation"
    return [CheckResult("consent_violation", "raw.campaign_sends", "sent_at", severity, n == 0, float(n), 0.0,
                        details)]


# --- 7. a file cut off -------------------------------------------------------------------------------------

def check_truncated(
    con: duckdb.DuckDBPyConnection, settings: Settings, batch: str, severity: str = "critical",
) -> list[CheckResult]:
    """CSV files of the batch whose last row was quarantined as malformed and that end without a line break.

    An export that stopped mid-write (a full disk, a killed job, a transfer cut off) leaves exactly that:
    every row after the cut is lost, and the rows before it load as if the file were whole. Each sign
    alone is common (a malformed row, a last line without a break); together they are a cut.
    """
    files = con.execute(
        """SELECT l.file, l.rows_in_file, q.value
           FROM raw._load_log l JOIN raw._quarantine q ON q.file_hash = l.file_hash AND q.row_number = l.rows_in_file
           WHERE l.batch = ? AND l.superseded_by IS NULL AND l.format = 'csv' AND q.reason = 'malformed_row'""",
        [batch]).fetchall()
    cut = []
    for file, rows, error in files:
        path = settings.landing_dir / file
        if str(error or "").upper() in TRUNCATION_ERRORS and _ends_without_newline(path):
            cut.append(f"{file} (row {rows}: {error})")
    details = f"batch {batch}: " + ("; ".join(cut) + ": cut off mid-row, the rows after the cut are lost; "
                                    "re-export the file whole" if cut else "no file cut off mid-row")
    return [CheckResult("truncated_file", "raw._load_log", None, severity, not cut, float(len(cut)), 0.0, details)]


def _ends_without_newline(path: Path) -> bool:
    if not path.is_file() or path.name.lower().endswith(".gz") or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) not in (b"\n", b"\r")


def delivery_checks(
    con: duckdb.DuckDBPyConnection, settings: Settings, batch: str, published_at: datetime | None,
    rules: dict[str, Any],
) -> list[CheckResult]:
    """Every delivery check of one pending batch (``rules``: the raw section of expectations/rules.yaml)."""
    if "_load_log" not in _columns(con):
        return []
    sev = rules["severity"]
    d = rules["deliveries"]
    return [
        *check_source_missing(con, batch, published_at, critical=d["source_missing_critical"],
                              lookback=int(d["source_missing_lookback"])),
        *check_day_gap(con, settings, batch, sources=d["day_gap_sources"], severity=d["day_gap_severity"],
                       share_min=float(d["day_gap_share_min"]), min_rows=int(d["day_gap_min_rows"])),
        *check_identity(con, batch, published_at, drop_max=float(d["identity_drop_max"]),
                        z_min=float(d["identity_z_min"]), min_rows=int(d["identity_min_rows"]),
                        severity=sev["identity_share"]),
        *check_key_conflicts(con, batch, share_max=float(d["key_conflict_max"]), severity=sev["key_conflicts"]),
        *check_lines_match(con, batch, published_at, shift_max=float(d["lines_mismatch_shift_max"]),
                           tolerance=float(d["lines_tolerance"]), min_rows=int(d["lines_min_rows"]),
                           severity=sev["lines_match"]),
        *check_consent_mix(con, batch, published_at, p_min=float(d["consent_p_min"]), p_warn=float(d["consent_p_warn"]),
                           shift_min=float(d["consent_shift_min"]), min_rows=int(d["consent_min_rows"]),
                           severity=sev["consent_mix"]),
        *check_consent_violation(con, batch, severity=sev["consent_violation"]),
        *check_truncated(con, settings, batch, severity=sev["truncated_file"]),
    ]
