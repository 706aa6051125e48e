"""The CLV anchor on real data: BG/NBD + Gamma-Gamma on the CDNOW sample against Fader, Hardie & Lee (2005).

    .venv/bin/python bench/cdnow_anchor.py [--write]    # --write replaces its result in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bench.results import RESULTS, head_commit, machine, write_section
from ml.clv import CDNOW_HOLDOUT_ACTUAL, cdnow_benchmark

HEADING = "## CLV anchor: CDNOW (issue 4)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the result in {RESULTS}")
    args = parser.parse_args()
    result = cdnow_benchmark()
    lines = [
        HEADING, "",
        "Command: `python bench/cdnow_anchor.py --write`  ",
        f"Commit: {head_commit()}  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {result.customers:,} customers, weeks, calibration to 1997-09-30",
        "",
        "| parameter | published | fitted | relative error |",
        "|---|---:|---:|---:|",
    ]
    for name, published in result.published.items():
        fitted = result.params[name]
        lines.append(f"| {name} | {published:g} | {fitted:.4f} | {abs(fitted - published) / published:.2%} |")
    holdout = result.holdout
    lines += [
        "",
        f"Weeks 40-78 holdout, repeat transactions of the cohort: actual {holdout.actual:,.0f} "
        f"(published {CDNOW_HOLDOUT_ACTUAL:,}), forecast {holdout.forecast:,.1f} "
        f"({(holdout.forecast - holdout.actual) / holdout.actual:+.1%}, sum of each customer's conditional "
        f"expectation); unconditional forecast {holdout.forecast_unconditional:,.1f}. "
        f"Fit seconds: {', '.join(f'{k} {v:.1f}' for k, v in result.fit_seconds.items())}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
