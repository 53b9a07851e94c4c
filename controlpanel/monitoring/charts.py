"""Server-rendered SVG charts (no JavaScript, no CDN) with a table alternative for each.

Every chart is a ``Chart``: ``svg`` (safe markup: role="img", <title>/<desc>, one marker element per data
point carrying ``data-point`` / ``data-series`` / ``data-value``), plus ``columns``/``rows`` for the table
view. Series differ by marker shape and line dash as well as colour, so colour is never the only cue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 16, 48
COLOURS = ("#1f4fbf", "#a4161a", "#17663a", "#8a5a00")
MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "6 4", "2 3", "10 3 2 3")


@dataclass
class Series:
    name: str
    points: list[tuple]  # (x, y) with x a datetime (line charts) or a label (bar charts); y a number or None


@dataclass
class Reference:
    value: float
    label: str


@dataclass
class Chart:
    key: str
    title: str
    description: str
    unit: str
    svg: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    points: int = 0
    empty: str = ""


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8, 10):  # each divides into four round ticks
        if step * magnitude >= value:
            return step * magnitude
    return value


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    else:
        text = f"{int(value):,}"
    return f"{text} {unit}".strip()


def _marker(shape: str, x: float, y: float, colour: str, attrs: str) -> str:
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" {attrs}>'
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}" {attrs}>'
    if shape == "triangle":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}" '
                f'fill="{colour}" {attrs}>')
    return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}" '
            f'fill="#fff" stroke="{colour}" stroke-width="2" {attrs}>')


def _close(shape: str) -> str:
    return {"circle": "</circle>", "square": "</rect>"}.get(shape, "</polygon>")


def _frame(chart: Chart, body: list[str], legend: list[str], y_max: float, height: int = HEIGHT) -> str:
    plot_h = HEIGHT - TOP - BOTTOM  # the plot area is fixed; a taller chart only gains room for labels
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{chart.key}-t {chart.key}-d" data-chart="{chart.key}" class="chart" '
        f'style="max-width: {WIDTH}px; height: auto; display: block">',
        f'<title id="{chart.key}-t">{escape(chart.title)}</title>',
        f'<desc id="{chart.key}-d">{escape(chart.description)}</desc>',
        '<defs><pattern id="hatch-' + chart.key + '" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#a4161a" stroke-width="3"/></pattern></defs>',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{plot_h}" fill="#fff" stroke="#d7d7dc"/>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{escape(fmt(value))}</text>')
    parts.append(f'<text x="12" y="{TOP + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{escape(chart.unit)}</text>')
    parts += body
    x = LEFT
    for item in legend:
        parts.append(f'<g transform="translate({x} {height - 12})">{item}</g>')
        x += 190
    parts.append("</svg>")
    return "".join(parts)


def line_chart(key: str, title: str, description: str, unit: str, series: list[Series],
               references: tuple[Reference, ...] = (), empty: str = "No data yet.") -> Chart:
    """Time series with markers per point and optional horizontal reference lines (SLA, budget)."""
    chart = Chart(key, title, description, unit, empty=empty)
    points = [(x, y) for s in series for x, y in s.points if y is not None]
    xs = sorted({x for s in series for x, _ in s.points})
    chart.columns = ["Time (UTC)"] + [f"{s.name} ({unit})" for s in series]
    by_x = [{x: y for x, y in s.points} for s in series]
    chart.rows = [[x.strftime("%Y-%m-%d %H:%M:%S")] + [fmt(values.get(x)) for values in by_x] for x in xs]
    chart.points = len(points)
    if not points:
        return chart
    y_max = _nice_max(max([y for _, y in points] + [r.value for r in references]) * 1.05)
    t0, t1 = xs[0].timestamp(), xs[-1].timestamp()
    plot_w, plot_h = WIDTH - LEFT - RIGHT - 20, HEIGHT - TOP - BOTTOM

    def px(x: datetime) -> float:
        return LEFT + 10 + (plot_w * (x.timestamp() - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)

    def py(y: float) -> float:
        return TOP + plot_h - plot_h * y / y_max

    body, legend = [], []
    for n, ref in enumerate(references):
        y = py(ref.value)
        label_x, anchor = (WIDTH - RIGHT - 4, "end") if n % 2 == 0 else (LEFT + 6, "start")
        body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#5a5a60" '
                    f'stroke-width="1.5" stroke-dasharray="8 4" data-reference="{escape(ref.label)}"/>')
        body.append(f'<text x="{label_x}" y="{y - 4:.1f}" text-anchor="{anchor}" font-size="11" '
                    f'fill="#1d1d1f">{escape(ref.label)}</text>')
    ticks = [(xs[0], "middle")] if t0 == t1 else [(xs[0], "start"), (xs[len(xs) // 2], "middle"), (xs[-1], "end")]
    for tick, anchor in ticks:
        body.append(f'<text x="{px(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}" font-size="11">'
                    f'{tick:%m-%d %H:%M}</text>')
    for i, s in enumerate(series):
        colour, shape, dash = COLOURS[i % 4], MARKERS[i % 4], DASHES[i % 4]
        coords = [(px(x), py(y), x, y) for x, y in s.points if y is not None]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                        f'stroke-dasharray="{dash}"/>')
        for cx, cy, x, y in coords:
            attrs = (f'data-point data-series="{escape(s.name)}" data-value="{y}" '
                     f'data-x="{x.isoformat()}"')
            body.append(_marker(shape, cx, cy, colour, attrs)
                        + f"<title>{escape(s.name)}: {escape(fmt(y, unit))} at {x:%Y-%m-%d %H:%M}</title>"
                        + _close(shape))
        legend.append(_marker(shape, 6, -4, colour, "") + _close(shape)
                      + f'<line x1="14" x2="40" y1="-4" y2="-4" stroke="{colour}" stroke-width="2" '
                        f'stroke-dasharray="{dash}"/><text x="46" y="0" font-size="12">{escape(s.name)}</text>')
    chart.svg = mark_safe(_frame(chart, body, legend, y_max))  # noqa: S308 - every text part is escaped above
    return chart


def bar_chart(key: str, title: str, description: str, unit: str, labels: list[str], series: list[Series],
              empty: str = "No data yet.") -> Chart:
    """Grouped vertical bars; the first series is solid, the second hatched, each bar labelled with its value."""
    chart = Chart(key, title, description, unit, empty=empty)
    chart.columns = ["Category"] + [f"{s.name} ({unit})" for s in series]
    values = [[dict(s.points).get(label) for s in series] for label in labels]
    chart.rows = [[label] + [fmt(v) for v in row] for label, row in zip(labels, values, strict=True)]
    chart.points = sum(1 for row in values for v in row if v is not None)
    if not chart.points:
        return chart
    y_max = _nice_max(max(v for row in values for v in row if v is not None) * 1.1)
    rotate = len(labels) > 8
    height = HEIGHT + (110 if rotate else 0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / len(labels)
    bar_w = max(4.0, min(40.0, (group_w - 8) / len(series)))
    body, legend = [], []
    for g, (label, row) in enumerate(zip(labels, values, strict=True)):
        x0 = LEFT + g * group_w + (group_w - bar_w * len(series)) / 2
        for i, value in enumerate(row):
            if value is None:
                continue
            h = plot_h * value / y_max
            x, y = x0 + i * bar_w, TOP + plot_h - h
            fill = COLOURS[0] if i == 0 else f"url(#hatch-{key})"
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{fill}" '
                        f'stroke="#1d1d1f" stroke-width="0.5" data-bar data-series="{escape(series[i].name)}" '
                        f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}, '
                        f'{escape(series[i].name)}: {escape(fmt(value, unit))}</title></rect>')
            if bar_w >= 14:
                body.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                            f'font-size="10">{escape(fmt(value))}</text>')
        cx = LEFT + g * group_w + group_w / 2
        if rotate:
            short = label if len(label) <= 30 else label[:29] + "…"
            body.append(f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 10}" text-anchor="end" font-size="10" '
                        f'transform="rotate(-40 {cx:.1f} {HEIGHT - BOTTOM + 10})">{escape(short)}</text>')
        else:
            short = label if len(label) <= 12 else label[:11] + "…"
            body.append(f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="10">'
                        f'{escape(short)}</text>')
    for i, s in enumerate(series):
        fill = COLOURS[0] if i == 0 else f"url(#hatch-{key})"
        legend.append(f'<rect x="0" y="-12" width="14" height="14" fill="{fill}" stroke="#1d1d1f"/>'
                      f'<text x="20" y="0" font-size="12">{escape(s.name)}{" (hatched)" if i else " (solid)"}</text>')
    chart.svg = mark_safe(_frame(chart, body, legend, y_max, height))  # noqa: S308 - every text part is escaped
    return chart


def table_html(chart: Chart) -> str:
    """The chart's data as an HTML table (rendered in the template's <details> table view)."""
    head = "".join(format_html('<th scope="col">{}</th>', c) for c in chart.columns)
    body = "".join("<tr>" + "".join(format_html("<td>{}</td>", v) for v in row) + "</tr>" for row in chart.rows)
    return mark_safe(f"<table><caption>{escape(chart.title)}</caption><thead><tr>{head}</tr></thead>"  # noqa: S308
                     f"<tbody>{body}</tbody></table>")
