"""Raw checks of what changes decisions: amounts on another scale, purchases counted twice, an exposed
holdout, and a published period rewritten (issue 22).

Each of these passed every column rule: a price x100 is a valid decimal, a re-sent order under a new id
is a new key, a holdout member's delivered event is a valid event, an order dated last week is not in
the future. Yet each changes what the loop learns and spends: revenue 10x, a day counted twice, a
contaminated control arm, a published KPI silently rewritten. So each is critical.

They compare a batch with what was already published: the rows of files loaded up to the last
publication (``audit.publications``). Before the first publication there is nothing to compare with,
and the checks say so (``not judged``) and pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from campaign_loop.config import Settings
from expectations.deliveries import delivery_checks
from expectations.load_log import _columns, _live, _loaded
from expectations.results import CheckResult

APPROVALS_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.restatement_approvals (
    cycle_id VARCHAR NOT NULL,
    restated_cycle_id VARCHAR NOT NULL,
    published_revenue DOUBLE,
    revenue_change DOUBLE NOT NULL,
    validation_result_id VARCHAR,
    approved_at TIMESTAMP NOT NULL
)
"""

# Amount columns whose scale the loop's money decisions rest on, and what a "same thing" is to compare
# them across batches: the source (a transaction's total) or the product (a line's unit price).
SCALE_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("orders", "total_amount", None),
    ("pos_receipts", "total_amount", None),
    ("order_lines", "unit_price", "product_id"),
    ("pos_receipt_lines", "unit_price", "product_id"),
)
# Transaction headers, their id, the content that makes two documents the same purchase, and their lines.
DOCUMENTS: dict[str, dict[str, Any]] = {
    "orders": {"id": "order_id", "at": "ordered_at", "type": "order_type", "lines": "order_lines",
               "content": ["member_id", "email", "phone", "cookie_id", "device_id"]},
    "pos_receipts": {"id": "receipt_id", "at": "purchased_at", "type": "receipt_type", "lines": "pos_receipt_lines",
                     "content": ["store_id", "member_id"]},
}
EXPOSURE_EVENTS = ("delivered", "open", "click")


def last_publication(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, str | None]:
    """(when, cycle_id) of the latest publication; (None, None) before the first."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'audit' AND table_name = 'publications'"
    ).fetchone()[0]
    if not exists:
        return None, None
    row = con.execute("SELECT max(published_at), max(cycle_id) FROM audit.publications").fetchone()
    return (row[0], row[1]) if row and row[0] is not None else (None, None)


# --- 1. scale --------------------------------------------------------------------------------------

def check_scale(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, ratio_max: float,
    min_rows: int, severity: str = "critical",
) -> list[CheckResult]:
    """Median amount of the batch vs the published history: per source for totals, per product for lines.

    observed = the median ratio (for lines: the median over products of each product's ratio of medians);
    outside [1/ratio_max, ratio_max] the batch is on another scale (cents as units, a currency slip).
    Credit notes and zero amounts are left out: their size says nothing about the scale.
    """
    columns = _columns(con)
    checks: list[CheckResult] = []
    for source, column, by in SCALE_COLUMNS:
        have = columns.get(source, set())
        if column not in have or "_batch" not in have or (by and by not in have):
            continue
        table = f"raw.{source}"
        if published_at is None:
            checks.append(CheckResult("scale_shift", table, column, severity, True, None, ratio_max,
                                      f"batch {batch}: nothing published yet to compare with: not judged"))
            continue
        type_col = next((t for t in ("order_type", "receipt_type") if t in have), None)
        sale = f"AND coalesce(lower(trim({type_col})), 'sale') = 'sale'" if type_col else ""
        amount = f"CAST({column} AS DOUBLE)"
        where = f"{amount} > 0 {sale}"
        key = by or "'all'"
        row = con.execute(
            f"""
            WITH now AS (
                SELECT {key} AS k, median({amount}) AS m, count(*) AS n FROM raw.{source} r
                WHERE _batch = ? AND {_live()} AND {where} GROUP BY 1
            ), before AS (
                SELECT {key} AS k, median({amount}) AS m, count(*) AS n FROM raw.{source} r
                WHERE {_live()} AND {_loaded('r', after=False)} AND {where} GROUP BY 1
            )
            SELECT median(now.m / before.m), count(*), coalesce(sum(now.n), 0)
            FROM now JOIN before USING (k) WHERE before.m > 0
            """,
            [batch, published_at],
        ).fetchone()
        ratio, keys, rows = row
        if rows < min_rows or ratio is None:
            checks.append(CheckResult("scale_shift", table, column, severity, True, ratio, ratio_max,
                                      f"batch {batch}: {int(rows)} comparable rows, {min_rows} needed: not judged"))
            continue
        ok = 1 / ratio_max <= ratio <= ratio_max
        what = f"median over {int(keys)} products of each product's" if by else "the"
        checks.append(CheckResult(
            "scale_shift", table, column, severity, ok, round(float(ratio), 6), ratio_max,
            f"batch {batch}: {what} median {column} is {float(ratio):.4g}x the published history's "
            f"(allowed 1/{ratio_max:g} to {ratio_max:g}x; {int(rows)} rows)" + ("" if ok else
            ": amounts on another scale (cents as units? another currency?)")))
    return checks


def check_spend_scale(
    con: duckdb.DuckDBPyConnection, batch: str, published_at: datetime | None, *, ratio_max: float,
    min_rows: int, severity: str = "critical",
) -> list[CheckResult]:
    """Per paid channel: the batch's spend per impression vs the channel's published history.

    observed = the ratio furthest from 1 over the channels judged. A channel's amounts doubled (rows summed
    twice by the export, a report re-run over the same days) double its unit cost while its impressions
    stay; a raised budget buys more impressions at the auction's price. ROI and the next plan's spend
    rest on it, so outside [1/ratio_max, ratio_max] is critical.
    """
    have = _columns(con).get("ad_spend", set())
    if not {"channel", "spend", "impressions", "_batch"} <= have:
        return []
    if published_at is None:
        return [CheckResult("spend_scale", "raw.ad_spend", "spend", severity, True, None, ratio_max,
                            f"batch {batch}: nothing published yet to compare with: not judged")]
    unit = "sum(TRY_CAST(spend AS DOUBLE)) / sum(TRY_CAST(impressions AS DOUBLE))"
    valid = "TRY_CAST(impressions AS DOUBLE) > 0 AND TRY_CAST(spend AS DOUBLE) >= 0"
    rows = con.execute(
        f"""WITH now AS (SELECT channel, {unit} AS u, count(*) AS n FROM raw.ad_spend r
                         WHERE _batch = ? AND {_live()} AND {valid} GROUP BY 1),
                 before AS (SELECT channel, {unit} AS u FROM raw.ad_spend r
                            WHERE {_live()} AND {_loaded('r', after=False)} AND {valid} GROUP BY 1)
            SELECT channel, now.u / before.u, now.n FROM now JOIN before USING (channel)
            WHERE before.u > 0 AND now.n >= ? ORDER BY channel""",
        [batch, published_at, min_rows]).fetchall()
    if not rows:
        return [CheckResult("spend_scale", "raw.ad_spend", "spend", severity, True, None, ratio_max,
                            f"batch {batch}: no channel with {min_rows} rows and a history: not judged")]
    off = [(c, r) for c, r, _ in rows if not 1 / ratio_max <= r <= ratio_max]
    worst = max((r for _, r, _ in rows), key=lambda r: max(r, 1 / r) if r > 0 else float("inf"))
    details = (f"batch {batch}: spend per impression vs the channel's published history: "
               + ", ".join(f"{c} {r:.3g}x" for c, r, _ in rows) + f" (allowed 1/{ratio_max:g} to {ratio_max:g}x)")
    if off:
        details += (f"; {', '.join(c for c, _ in off)} on another scale: amounts summed twice or in another "
                    "unit, ROI and the next plan's spend would rest on them")
    return [CheckResult("spend_scale", "raw.ad_spend", "spend", severity, not off, round(float(worst), 6),
                        ratio_max, details)]


# --- 2. the same purchase under a new id ------------------------------------------------------------

def check_content_duplicates(
    con: duckdb.DuckDBPyConnection, batch: str, *, share_max: float, severity: str = "critical",
) -> list[CheckResult]:
    """Share of the batch's documents that match another live document by content under another id.

    Content: the customer's identifiers (for receipts, the store and member), the time, the total and the
    document type; and the lines (product, quantity, price) when both documents have lines. Ingestion
    recognises a re-sent file by its bytes and staging a re-sent row by its id; a re-export that
    regenerated the ids slips past both and counts every purchase again.
    """
    columns = _columns(con)
    checks: list[CheckResult] = []
    for source, doc in DOCUMENTS.items():
        have = columns.get(source, set())
        if not {doc["id"], doc["at"], "total_amount", "_batch"} <= have:
            continue
        content = [c for c in doc["content"] if c in have]
        typ = f"coalesce(lower(trim({doc['type']})), 'sale')" if doc["type"] in have else "'sale'"
        key = ", ".join([*(f"coalesce(trim(CAST({c} AS VARCHAR)), '')" for c in content),
                         f"CAST({doc['at']} AS VARCHAR)", "CAST(total_amount AS VARCHAR)", typ])
        lines, line_cols = doc["lines"], columns.get(doc["lines"], set())
        has_lines = {doc["id"], "product_id", "quantity", "unit_price"} <= line_cols
        ident = doc["id"]
        pairs = f"""
            WITH docs AS (
                SELECT _batch, {ident} AS id, md5(concat_ws('|', {key})) AS k FROM raw.{source} r
                WHERE {_live()} AND {ident} IS NOT NULL
            ), mine AS (SELECT DISTINCT id, k FROM docs WHERE _batch = ?),
            pairs AS (
                SELECT DISTINCT m.id AS a, d.id AS b FROM mine m JOIN docs d ON d.k = m.k AND d.id <> m.id
            )
        """
        if has_lines:
            sql = pairs + f""",
            sig AS (
                SELECT {ident} AS id,
                       string_agg(concat_ws(':', product_id, quantity, unit_price), ','
                                  ORDER BY product_id, quantity, unit_price) AS s
                FROM raw.{lines} l
                WHERE {_live('l')} AND {ident} IN (SELECT a FROM pairs UNION SELECT b FROM pairs)
                GROUP BY 1
            )
            SELECT (SELECT count(*) FROM mine),
                   count(DISTINCT p.a), min(p.a), min(p.b)
            FROM pairs p LEFT JOIN sig sa ON sa.id = p.a LEFT JOIN sig sb ON sb.id = p.b
            WHERE sa.s IS NULL OR sb.s IS NULL OR sa.s = sb.s
            """
        else:
            sql = pairs + "SELECT (SELECT count(*) FROM mine), count(DISTINCT a), min(a), min(b) FROM pairs"
        total, dup, example_a, example_b = con.execute(sql, [batch]).fetchone()
        if not total:
            continue
        share = dup / total
        ok = share <= share_max
        details = f"batch {batch}: {dup:,} of {total:,} {source} match another {ident} by content"
        if dup:
            details += f" (e.g. {example_a} = {example_b})"
        if not ok:
            details += ": the same purchases re-sent under new ids"
        checks.append(CheckResult("content_duplicates", f"raw.{source}", ident, severity, ok, round(share, 6),
                                  share_max, details))
    return checks


# --- 3. an exposed holdout ---------------------------------------------------------------------------

def check_holdout_exposure(con: duckdb.DuckDBPyConnection, batch: str, severity: str = "critical") -> list[CheckResult]:
    """Any contact of a member assigned the control arm: a send with sent_at, a delivered/open/click event,
    or a redemption of that campaign's coupon. One is enough: the holdout measures every effect."""
    columns = _columns(con)
    sends = columns.get("campaign_sends", set())
    if not {"campaign_id", "member_id", "arm", "_batch"} <= sends:
        return []
    control = f"""(SELECT DISTINCT campaign_id, member_id FROM raw.campaign_sends r
                   WHERE {_live()} AND lower(trim(arm)) = 'control')"""
    found: list[tuple[str, str, int, Any]] = []
    if "sent_at" in sends:
        n, example = con.execute(
            f"""SELECT count(*), min(member_id) FROM raw.campaign_sends r WHERE _batch = ? AND {_live()}
                AND lower(trim(arm)) = 'control' AND sent_at IS NOT NULL""", [batch]).fetchone()
        found.append(("campaign_sends", "sent_at", n, example))
    if {"campaign_id", "member_id", "event_type", "_batch"} <= columns.get("campaign_events", set()):
        types = ", ".join(f"'{t}'" for t in EXPOSURE_EVENTS)
        n, example = con.execute(
            f"""SELECT count(*), min(e.member_id) FROM raw.campaign_events e JOIN {control} c USING (campaign_id, member_id)
                WHERE e._batch = ? AND {_live('e')} AND lower(trim(e.event_type)) IN ({types})""", [batch]).fetchone()
        found.append(("campaign_events", "event_type", n, example))
    if {"campaign_id", "member_id", "_batch"} <= columns.get("coupon_redemptions", set()):
        n, example = con.execute(
            f"""SELECT count(*), min(x.member_id) FROM raw.coupon_redemptions x JOIN {control} c USING (campaign_id, member_id)
                WHERE x._batch = ? AND {_live('x')}""", [batch]).fetchone()
        found.append(("coupon_redemptions", "campaign_id", n, example))
    checks = []
    for source, column, n, example in found:
        details = f"batch {batch}: {n:,} {source} rows contact a member assigned arm control"
        if n:
            details += f" (e.g. {example}): the holdout is contaminated, the lift it measures is not"
        checks.append(CheckResult("holdout_exposure", f"raw.{source}", column, severity, n == 0, float(n), 0.0,
                                  details))
    return checks


# --- 4. a published period rewritten ---------------------------------------------------------------

def _revenue(alias: str, type_col: str | None, status: bool) -> str:
    """Revenue of a raw document as fct_orders counts it: a placed sale adds, a credit note takes off."""
    kind = f"coalesce(lower(trim({alias}.{type_col})), 'sale')" if type_col else "'sale'"
    placed = f"coalesce(lower(trim({alias}.status)), 'placed') = 'placed'" if status else "TRUE"
    return (f"CASE WHEN {kind} = 'sale' AND {placed} THEN CAST({alias}.total_amount AS DOUBLE) "
            f"WHEN {kind} <> 'sale' THEN -abs(CAST({alias}.total_amount AS DOUBLE)) ELSE 0 END")


def check_restatement(
    con: duckdb.DuckDBPyConnection, settings: Settings, cycle_id: str, *, share_max: float,
    approved: Sequence[str] = (), validation_result_id: str | None = None, severity: str = "critical",
) -> list[CheckResult]:
    """Revenue of published cycles changed by what was loaded since the last publication.

    Per cycle up to the last published one: rows of files loaded since (live) add their revenue, rows of
    files those superseded take theirs off. A change above ``share_max`` of the cycle's published revenue
    is critical unless the cycle is in ``approved`` (Settings ``approve_restatement``): then it passes and
    an audit row records who changed what (audit.restatement_approvals).
    """
    published_at, published_cycle = last_publication(con)
    table = "raw.orders"
    if published_at is None:
        return [CheckResult("restatement", table, "total_amount", severity, True, None, share_max,
                            "nothing published yet: not judged")]
    columns = _columns(con)
    horizon = datetime.combine(date.fromisoformat(published_cycle), datetime.min.time()) \
        + (settings.cycle_start(1) - settings.cycle_start(0))
    start = settings.start_date.isoformat()
    week = (f"strftime(CAST('{start}' AS DATE) + CAST(floor(date_diff('day', CAST('{start}' AS DATE), "
            f"CAST({{at}} AS DATE)) / {settings.cycle_days}) * {settings.cycle_days} AS INTEGER), '%Y-%m-%d')")
    parts = []
    for source, doc in DOCUMENTS.items():
        have = columns.get(source, set())
        if not {doc["at"], "total_amount", "_file_hash"} <= have:
            continue
        type_col = doc["type"] if doc["type"] in have else None
        revenue = _revenue("r", type_col, "status" in have)
        at = f"r.{doc['at']}"
        parts.append(f"""
            SELECT {week.format(at=at)} AS week, {revenue} AS added, 0.0 AS removed FROM raw.{source} r
            WHERE {_live()} AND {_loaded('r', after=True)} AND {at} < ?
            UNION ALL
            SELECT {week.format(at=at)}, 0.0, {revenue} FROM raw.{source} r
            WHERE r._file_hash IN (SELECT file_hash FROM raw._load_log WHERE superseded_by IN
                                   (SELECT file_hash FROM raw._load_log WHERE loaded_at > ?))
              AND {at} < ?""")
    if not parts:
        return []
    params = [published_at, horizon, published_at, horizon] * len(parts)
    changes = con.execute(
        f"SELECT week, sum(added), sum(removed) FROM ({' UNION ALL '.join(parts)}) GROUP BY 1 ORDER BY 1", params
    ).fetchall()
    published = _published_revenue(con, settings)
    checks: list[CheckResult] = []
    worst = 0.0
    for week, added, removed in changes:
        change = float(added) - float(removed)
        base = published.get(week)
        share = abs(change) / base if base else (0.0 if abs(change) < 0.005 else float("inf"))
        worst = max(worst, share)
        if share <= share_max:
            continue
        where = (f"cycle {week} (published revenue {base:,.2f})" if base else f"cycle {week} (no published revenue)")
        details = (f"rows loaded since the publication of {published_cycle} change {where} by {change:+,.2f} "
                   f"(+{float(added):,.2f} new, -{float(removed):,.2f} superseded)")
        if week in approved:
            _record_approval(con, cycle_id, week, base, change, validation_result_id)
            checks.append(CheckResult("restatement", table, "total_amount", severity, True,
                                      round(share, 6) if share != float("inf") else None, share_max,
                                      f"approved restatement (approve_restatement): {details}"))
        else:
            checks.append(CheckResult("restatement", table, "total_amount", severity, False,
                                      round(share, 6) if share != float("inf") else None, share_max,
                                      f"{details}: a published period rewritten; approve it with "
                                      f"approve_restatement={week} if intended"))
    if not checks:
        checks.append(CheckResult("restatement", table, "total_amount", severity, True, round(worst, 6), share_max,
                                  f"published cycles up to {published_cycle}: largest change {worst:.4%} of a "
                                  "cycle's published revenue"))
    return checks


def _published_revenue(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, float]:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'published' AND table_name = 'fct_orders'"
    ).fetchone()[0]
    if not exists:
        return {}
    start = settings.start_date.isoformat()
    rows = con.execute(
        """SELECT strftime(CAST(? AS DATE) + CAST(floor(date_diff('day', CAST(? AS DATE), CAST(ordered_at AS DATE))
                   / ?) * ? AS INTEGER), '%Y-%m-%d'), sum(total_amount)
            FROM published.fct_orders WHERE is_revenue GROUP BY 1""",
        [start, start, settings.cycle_days, settings.cycle_days]).fetchall()
    return {week: float(revenue) for week, revenue in rows if revenue is not None}


def _record_approval(
    con: duckdb.DuckDBPyConnection, cycle_id: str, restated: str, base: float | None, change: float,
    validation_result_id: str | None,
) -> None:
    con.execute(APPROVALS_DDL)
    con.execute("INSERT INTO audit.restatement_approvals VALUES (?, ?, ?, ?, ?, ?)",
                [cycle_id, restated, base, change, validation_result_id, datetime.now(UTC).replace(tzinfo=None)])


def decision_checks(
    con: duckdb.DuckDBPyConnection, settings: Settings, cycle_id: str, batches: Sequence[str], rules: dict[str, Any],
    validation_result_id: str | None = None,
) -> list[CheckResult]:
    """Every decision check of the raw gate: per pending batch (with ``expectations.deliveries``' checks of
    what the batch's exports delivered), then the restatement of published cycles."""
    columns = _columns(con)
    if "_load_log" not in columns:
        return []
    published_at, _ = last_publication(con)
    sev = rules["severity"]
    checks: list[CheckResult] = []
    for batch in batches:
        checks += check_scale(con, batch, published_at, ratio_max=float(rules["scale_ratio_max"]),
                              min_rows=int(rules["scale_min_rows"]), severity=sev["scale_shift"])
        checks += check_spend_scale(con, batch, published_at, ratio_max=float(rules["spend_unit_ratio_max"]),
                                    min_rows=int(rules["spend_min_rows"]), severity=sev["spend_scale"])
        checks += check_content_duplicates(con, batch, share_max=float(rules["content_duplicate_max"]),
                                           severity=sev["content_duplicates"])
        checks += check_holdout_exposure(con, batch, severity=sev["holdout_exposure"])
        checks += delivery_checks(con, settings, batch, published_at, rules)
    checks += check_restatement(con, settings, cycle_id, share_max=float(rules["restatement_share_max"]),
                                approved=settings.approve_restatement, validation_result_id=validation_result_id,
                                severity=sev["restatement"])
    return checks
