"""The annual complaints performance report as one self-contained HTML page, charts drawn as inline
SVG here (no libraries, nothing fetched), so the file can be published or mailed as it is."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from activities.reports import STAGE1_RESPONSE, STAGE2_RESPONSE, AnnualFigures, StageFigures, TsmReport

STAGE_COLOURS = {"stage-1": "#1d70b8", "stage-2": "#f47738"}
STAGE_NAMES = {"stage-1": "Stage 1", "stage-2": "Stage 2"}
DECISION_NAMES = {"upheld": "Upheld", "partly_upheld": "Partly upheld", "not_upheld": "Not upheld",
                  "not recorded": "Not recorded"}
DECISION_COLOURS = {"upheld": "#d4351c", "partly_upheld": "#f47738", "not_upheld": "#00703c",
                    "not recorded": "#b1b4b6"}
KEY_NAMES = {"stage1.acknowledgement": "Stage 1 acknowledgement", STAGE1_RESPONSE: "Stage 1 response",
             "stage2.acknowledgement": "Stage 2 acknowledgement", STAGE2_RESPONSE: "Stage 2 response"}
FONT = "font-family='Arial, Helvetica, sans-serif'"


def _nice_max(value: float) -> float:
    """A round number at or above value for the top of an axis (1, 2, 4, 6, 8 x 10^n)."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 4, 6, 8, 10):  # quarters of these are round numbers for the gridlines
        if m * step >= value:
            return m * step
    return 10 * step


def _fmt(v: float) -> str:
    return f"{v:g}"


def bar_chart(title: str, categories: list[str], series: list[tuple[str, list[float], str]],
              *, width: int = 720, height: int = 320, y_max: float | None = None, suffix: str = "",
              chart_id: str = "") -> str:
    """Grouped vertical bars: one group per category, one bar per series, value above each bar."""
    left, right, top, bottom = 44, 12, 44, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = y_max if y_max is not None else _nice_max(max([v for _, vs, _ in series for v in vs] + [0]))
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' "
             f"height='{height}' role='img' aria-label='{escape(title)}' data-chart='{escape(chart_id)}' {FONT}>",
             f"<title>{escape(title)}</title>", f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
             f"<text x='{left}' y='20' font-size='15' font-weight='bold' fill='#0b0c0c'>{escape(title)}</text>"]
    for i in range(5):  # gridlines and y labels at 0, 25, 50, 75, 100 % of the axis
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e5e5'/>")
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' font-size='11' text-anchor='end' "
                     f"fill='#505a5f'>{_fmt(round(v, 1))}{suffix}</text>")
    for gi, cat in enumerate(categories):
        gx = left + gi * group_w + group_w * 0.1
        for si, (name, values, colour) in enumerate(series):
            v = values[gi]
            h = plot_h * (v / top_value) if top_value else 0
            x, y = gx + si * bar_w, top + plot_h - h
            parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar_w * 0.92:.1f}' height='{h:.1f}' "
                         f"fill='{colour}'><title>{escape(cat)}, {escape(name)}: {_fmt(v)}{suffix}</title></rect>")
            if v:
                parts.append(f"<text x='{x + bar_w * 0.46:.1f}' y='{y - 3:.1f}' font-size='10' "
                             f"text-anchor='middle' fill='#0b0c0c'>{_fmt(v)}{suffix}</text>")
        parts.append(f"<text x='{left + gi * group_w + group_w / 2:.1f}' y='{top + plot_h + 16}' font-size='11' "
                     f"text-anchor='middle' fill='#0b0c0c'>{escape(cat)}</text>")
    parts.append(f"<line x1='{left}' x2='{width - right}' y1='{top + plot_h}' y2='{top + plot_h}' stroke='#0b0c0c'/>")
    lx = left
    for name, _values, colour in series:  # legend under the axis
        parts.append(f"<rect x='{lx}' y='{height - 18}' width='12' height='12' fill='{colour}'/>")
        parts.append(f"<text x='{lx + 16}' y='{height - 8}' font-size='12' fill='#0b0c0c'>{escape(name)}</text>")
        lx += 30 + 8 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(title: str, rows: list[tuple[str, float, str]], *, width: int = 720, x_max: float | None = None,
               suffix: str = "", chart_id: str = "", empty: str = "None in this period") -> str:
    """Horizontal bars, one per labelled row, value at the end of each bar."""
    label_w, right, top, row_h = 210, 60, 36, 30
    height = top + row_h * max(len(rows), 1) + 12
    top_value = x_max if x_max is not None else _nice_max(max([v for _, v, _ in rows] + [0]))
    plot_w = width - label_w - right
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' "
             f"height='{height}' role='img' aria-label='{escape(title)}' data-chart='{escape(chart_id)}' {FONT}>",
             f"<title>{escape(title)}</title>", f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
             f"<text x='8' y='20' font-size='15' font-weight='bold' fill='#0b0c0c'>{escape(title)}</text>"]
    if not rows:
        parts.append(f"<text x='8' y='{top + 18}' font-size='13' fill='#505a5f'>{escape(empty)}</text>")
    for i, (label, v, colour) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * (v / top_value) if top_value else 0
        parts.append(f"<text x='{label_w - 8}' y='{y + 18}' font-size='12' text-anchor='end' "
                     f"fill='#0b0c0c'>{escape(label)}</text>")
        parts.append(f"<rect x='{label_w}' y='{y + 4}' width='{w:.1f}' height='{row_h - 10}' fill='{colour}'>"
                     f"<title>{escape(label)}: {_fmt(v)}{suffix}</title></rect>")
        parts.append(f"<text x='{label_w + w + 6:.1f}' y='{y + 18}' font-size='12' "
                     f"fill='#0b0c0c'>{_fmt(v)}{suffix}</text>")
    parts.append("</svg>")
    return "".join(parts)


def volume_chart(f: AnnualFigures) -> str:
    months = [m.strftime("%b") for m, _ in f.months]
    series = [(STAGE_NAMES[s], [float(c[s]) for _, c in f.months], STAGE_COLOURS[s]) for s in ("stage-1", "stage-2")]
    return bar_chart(f"Complaints received by month and stage, {f.tsm.period.split(' (')[0]}", months, series,
                     chart_id="volume")


def on_time_chart(f: AnnualFigures) -> str:
    rows = []
    for key, (responded, on_time) in f.on_time.items():
        if responded:
            colour = STAGE_COLOURS["stage-1" if key.startswith("stage1") else "stage-2"]
            rows.append((f"{KEY_NAMES[key]} ({on_time} of {responded})", round(100.0 * on_time / responded, 1),
                         colour))
    return hbar_chart("Answered within the Code's timescales", rows, x_max=100, suffix="%", chart_id="on-time",
                      empty="Nothing was due and answered in this period")


def breaches_chart(f: AnnualFigures) -> str:
    rows = [(str(b["label"]), float(b["n"]), STAGE_COLOURS.get(b["stage"], "#505a5f")) for b in f.breaches]
    return hbar_chart("Deadlines missed, by kind", rows, chart_id="breaches", empty="No deadline was missed")


def outcomes_chart(f: AnnualFigures) -> str:
    decisions = [d for d in DECISION_NAMES if any(d in f.outcomes[s] for s in f.outcomes)]
    series = [(DECISION_NAMES[d], [float(f.outcomes[s].get(d, 0)) for s in ("stage-1", "stage-2")],
               DECISION_COLOURS[d]) for d in decisions]
    return bar_chart("Outcomes of responses sent, by stage", ["Stage 1", "Stage 2"], series, width=520,
                     chart_id="outcomes")


def _figure(name: str, value: object) -> str:
    return f"<td data-figure='{name}'>{escape('—' if value is None else str(value))}</td>"


def _stage_row(label: str, key: str, s: StageFigures) -> str:
    return (f"<tr><th scope='row'>{label}</th>{_figure(key + '_received', s.received)}"
            f"{_figure(key + '_per_1000', None if s.per_1000_homes is None else f'{s.per_1000_homes:.2f}')}"
            f"{_figure(key + '_responded', s.responded)}"
            f"{_figure(key + '_on_time', s.responded_on_time)}"
            f"{_figure(key + '_on_time_percent', None if s.on_time_percent is None else f'{s.on_time_percent:.1f}%')}"
            "</tr>")


def _homes(t: TsmReport) -> str:
    if t.homes is None:
        return (f"Homes: <span data-figure='homes'>not known</span>, so CH01 per 1,000 homes is not shown "
                f"({escape(t.homes_missing or 'no number of homes')}).")
    source = "as stored for the year" if t.homes_source == "landlord_stock" else "as given"
    return f"Homes: <span data-figure='homes'>{t.homes:,}</span> ({source})."


CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#0b0c0c;max-width:780px;margin:2em auto;padding:0 1em;line-height:1.45}
h1{font-size:1.9em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:2px solid #1d70b8;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:1em 0}th,td{border:1px solid #b1b4b6;padding:.4em .6em;text-align:left}
thead th{background:#f3f2f1}td[data-figure]{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figcaption{color:#505a5f;font-size:.9em}.muted{color:#505a5f}
"""


def render(f: AnnualFigures, landlord_name: str | None = None) -> str:
    t = f.tsm
    who = landlord_name or t.landlord or "All landlords in the case record"
    o = f.other
    total_breaches = sum(b["n"] for b in f.breaches)
    satisfied = (f"{o['satisfied']} of {o['surveys']} residents who answered the survey were satisfied "
                 f"(mean score {o['mean_score']}/10)." if o["surveys"] else "No satisfaction survey was answered.")
    generated = datetime.now(UTC).strftime("%d %B %Y")
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>{escape(who)}: annual complaints performance report, \
{escape(t.period)}</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>Annual complaints performance report</h1>
<p><strong>{escape(who)}</strong> · {escape(t.period)}</p>
<p>This report sets out how we handled complaints under the Housing Ombudsman's Complaint Handling Code, and
our Tenant Satisfaction Measures CH01 and CH02 as reported to the Regulator of Social Housing. Every figure
comes from our complaints case record.</p>

<h2>Tenant Satisfaction Measures</h2>
<table><thead><tr><th></th><th>Received</th><th>Per 1,000 homes (CH01)</th><th>Responses sent</th>
<th>Within the Code's timescales</th><th>Share (CH02)</th></tr></thead><tbody>
{_stage_row("Stage 1", "stage1", t.stage1)}
{_stage_row("Stage 2", "stage2", t.stage2)}
</tbody></table>
<p class="muted">{_homes(t)} CH02 counts responses sent in the year; an extension within the Code
(10 working days at Stage 1, 20 at Stage 2) counts as on time, time beyond that does not.</p>

<h2>Complaints received</h2>
<figure>{volume_chart(f)}<figcaption>Stage 1: complaints received; Stage 2: escalation requests and
complaints taken straight to Stage 2, by the month they reached us.</figcaption></figure>

<h2>Responding on time</h2>
<figure>{on_time_chart(f)}<figcaption>Acknowledgements and responses sent in the year, and the share sent
within the Code's timescales.</figcaption></figure>
<p>We missed <span data-figure='breaches_total'>{total_breaches}</span> deadlines in the year and extended
<span data-figure='extensions'>{o['extensions']}</span> response deadlines, telling the resident why each time.</p>
<figure>{breaches_chart(f)}</figure>

<h2>Outcomes</h2>
<figure>{outcomes_chart(f)}<figcaption>The decision in each Stage 1 response and final (Stage 2) response
sent in the year.</figcaption></figure>
<p>Escalations we declined, with our reasons: <span data-figure='escalations_refused'>{o['escalations_refused']}</span>.
Residents who told us they had gone to the Housing Ombudsman: <span data-figure='ombudsman_referrals'>\
{o['ombudsman_referrals']}</span>.</p>

<h2>What residents told us</h2>
<p>{escape(satisfied)}</p>
<p class="muted">Generated {generated} from the case record.</p>
</body></html>
"""
