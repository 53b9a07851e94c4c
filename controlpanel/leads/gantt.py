"""A run's timeline as a compact Gantt-like SVG, server-rendered like the monitoring charts: one bar per attempt,
in runbook order, on one time axis; the numbers stay readable in the table beside it."""

from django.utils.html import format_html, format_html_join

ROW, LABEL, WIDTH, AXIS = 18, 210, 900, 24
COLOURS = {"succeeded": "#17663a", "failed": "#a4161a", "interrupted": "#a4161a", "cancelled": "#5a5a60",
           "paused": "#8a5a00", "running": "#1f4fbf", "queued": "#1f4fbf"}


def gantt_svg(rows: list[dict], now=None) -> str:
    """rows: timeline.step_rows(run). Steps that never ran are left out; an empty run gives ""."""
    from django.utils import timezone

    now = now or timezone.now()
    bars = []
    for row in rows:
        for item in row["attempts"]:
            attempt = item["attempt"]
            if attempt.started_at:
                bars.append((row, attempt, attempt.started_at, attempt.finished_at or now))
        if not row["attempts"] and row["step"].started_at:  # ticked or signed off by hand
            bars.append((row, None, row["step"].started_at, row["step"].finished_at or now))
    if not bars:
        return ""
    start = min(b[2] for b in bars)
    span = max((max(b[3] for b in bars) - start).total_seconds(), 1.0)
    keys = list(dict.fromkeys(b[0]["def"].key for b in bars))
    height = AXIS + ROW * len(keys) + 6
    scale = (WIDTH - LABEL - 10) / span

    def x(moment):
        return LABEL + (moment - start).total_seconds() * scale

    labels = format_html_join("", '<text x="{}" y="{}" class="g-label">{}</text>',
                              ((LABEL - 6, AXIS + ROW * i + 13, b) for i, b in
                               enumerate(_titles(bars, keys))))
    shapes = format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                              ((_n(x(s)), AXIS + ROW * keys.index(row["def"].key) + 3, _n(max(x(e) - x(s), 2)), ROW - 6,
                                COLOURS.get(attempt.status if attempt else row["step"].status, "#5a5a60"),
                                _tooltip(row, attempt, s, e)) for row, attempt, s, e in bars))
    ticks = format_html_join("", '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" class="g-grid"/>'
                                 '<text x="{0}" y="14" class="g-tick">{3}</text>',
                             ((_n(LABEL + f * (WIDTH - LABEL - 10)), AXIS - 4, height, _offset(f * span))
                              for f in (0, 0.25, 0.5, 0.75, 1)))
    return format_html(
        '<svg class="gantt" viewBox="0 0 {} {}" role="img" aria-labelledby="gantt-title gantt-desc">'
        '<title id="gantt-title">Timeline of the run</title><desc id="gantt-desc">One bar per attempt from its start '
        'to its end, {} to {} UTC; the table below has the same figures.</desc>{}{}{}</svg>',
        WIDTH, height, f"{start:%H:%M:%S}", f"{start:%H:%M:%S} + {_offset(span)}", ticks, labels, shapes)


def _n(value: float) -> str:
    return f"{value:.1f}"  # format_html escapes its arguments to strings first: format numbers before


def _titles(bars, keys):
    titles = {b[0]["def"].key: b[0]["def"].title for b in bars}
    return [titles[k][:32] for k in keys]


def _tooltip(row, attempt, start, end) -> str:
    what = f"attempt {attempt.number} {attempt.status}" if attempt else row["step"].status
    return f"{row['def'].title}: {what}, {start:%H:%M:%S}–{end:%H:%M:%S} ({_offset((end - start).total_seconds())})"


def _offset(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
