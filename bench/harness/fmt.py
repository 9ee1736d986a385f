"""Numbers as the progress log and the report print them, and the median they report."""

import statistics


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "–"
    return f"{x * 1000:.0f} µs" if x < 1 else f"{x:.2f} ms"


def fmt_bytes(x):
    if abs(x) >= 10 * 1024:
        return f"{x / 1024:,.1f} KiB"
    return f"{x:,.0f} B"


def med(values):
    """The median of the values that are not None; None if there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
