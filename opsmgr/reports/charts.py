"""The one chart path: plain data in, inline SVG text out, for the patient chart page and the PDFs alike.

matplotlib's SVG backend draws; the output is then made safe to inline under the app's CSP
(``style-src 'self'``): every ``style`` attribute becomes presentation attributes, the ``<style>``,
metadata and doctype go, ``xlink:href`` becomes a local ``href``. The same data gives the same bytes
(a fixed hash salt, no date), and each SVG carries ``role="img"``, a ``<title>`` and a ``<desc>``.
"""
import functools
import hashlib
import io
import re
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time

from opsmgr.rules.scales import PHQ9_REMISSION_BELOW, PHQ9_RESPONSE_MIN_FALL_PERCENT

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
PHQ9, GAD7 = "PHQ-9", "GAD-7"
#: The lines drawn: remission is a PHQ-9 below 5, response a fall of 50 % or more from baseline (rules.scales).
REMISSION_BELOW = PHQ9_REMISSION_BELOW
RESPONSE_FRACTION = 1 - PHQ9_RESPONSE_MIN_FALL_PERCENT / 100

_RC = {"svg.hashsalt": "opsmgr-charts", "svg.fonttype": "none", "font.family": ["DejaVu Sans"],
       "font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7, "axes.spines.top": False,
       "axes.spines.right": False, "text.parse_math": False,
       # Titles sit just above their axes (no chart has ticks on top): a fixed place spares matplotlib
       # measuring every tick label to find one, a quarter of a chart's drawing time.
       "axes.titley": 1.0}
#: matplotlib's settings are process-wide: charts are drawn one at a time under our settings only.
_LOCK = threading.Lock()
_COLOURS = {"systolic": "#b2182b", "diastolic": "#2166ac", "heart_rate": "#1b7837", "spo2": "#5e3c99",
            PHQ9: "#2166ac", GAD7: "#b35806", "threshold": "#555555", "session": "#777777"}
_PRESENTATION = {"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin",
                 "stroke-dasharray", "stroke-dashoffset", "stroke-opacity", "stroke-miterlimit", "opacity",
                 "font-size", "font-family", "font-weight", "font-style", "text-anchor", "clip-path"}

#: The vitals chart's layout in figure fractions, as constrained layout works it out for its fixed labels
#: (three-digit ticks, one-line axis labels, the legend on the right; "right_alone" without a legend).
#: Laid out by hand because it is drawn for every summary PDF, and the layout engine doubled its time.
_VITALS_LAYOUT = {"left": 0.069, "right": 0.791, "right_alone": 0.983, "bottom": 0.099, "top": 0.948,
                  "hspace": 0.077, "legend": (0.795, 0.995)}
#: The same for the PHQ-9/GAD-7 trend (the series summary's chart): the legend's rows of three below.
_TREND_LAYOUT = {"left": 0.06, "right": 0.975, "top": 0.939, "bottom": 0.1875, "legend_row": 0.0405}

ET.register_namespace("", SVG_NS)


def vitals_chart(points, *, thresholds, title="Vital signs"):
    """Blood pressure and heart rate above, SpO2 below, with the alert thresholds as labelled dashed lines.

    `points`: (minutes since start, or an aware datetime in the zone to print, systolic, diastolic,
    heart rate, SpO2); any value may be None. `thresholds`: alert_systolic, alert_diastolic,
    alert_spo2_below (the policy's rule 12 values the session was decided under).
    """
    points = sorted(points, key=lambda point: _sort_key(point[0]))
    xs, tz = _xs([point[0] for point in points])
    clock = tz is not None or any(isinstance(point[0], datetime) for point in points)
    series = {name: [(x, point[index]) for x, point in zip(xs, points, strict=True) if point[index] is not None]
              for index, name in enumerate(("systolic", "diastolic", "heart_rate", "spo2"), 1)}

    def draw(fig):
        right = _VITALS_LAYOUT["right"] if points else _VITALS_LAYOUT["right_alone"]
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.4), gridspec_kw={
            name: _VITALS_LAYOUT[name] for name in ("left", "bottom", "top", "hspace")} | {"right": right})
        for name, label, marker in (("systolic", "Systolic BP (mmHg)", "v"), ("diastolic", "Diastolic BP (mmHg)",
                                                                              "^"),
                                    ("heart_rate", "Heart rate (beats/min)", "o")):
            _line(top, series[name], label, _COLOURS[name], marker)
        _threshold(top, thresholds.get("alert_systolic"), f"Systolic alert {thresholds.get('alert_systolic')}")
        _threshold(top, thresholds.get("alert_diastolic"), f"Diastolic alert {thresholds.get('alert_diastolic')}")
        top.set_ylabel("mmHg / beats per min")
        top.set_title(title, loc="left")
        _line(bottom, series["spo2"], "SpO2 (%)", _COLOURS["spo2"], "s")
        spo2_alert = thresholds.get("alert_spo2_below")
        _threshold(bottom, spo2_alert, f"SpO2 alert below {spo2_alert} %")
        low = min([value for _, value in series["spo2"]] + ([spo2_alert] if spo2_alert else []), default=90)
        bottom.set_ylim(max(0, min(low - 3, 88)), 101)
        bottom.set_ylabel("SpO2 %")
        _x_range(bottom, xs, at_least=1 / 24 if clock else 60, from_zero=not clock)
        if clock:
            _date_axis(bottom, tz, "%H:%M")
            bottom.set_xlabel("Time" + (f" ({_zone_name(tz, xs)})" if tz is not None else ""))
        else:
            bottom.set_xlabel("Minutes since start")
        _legend(fig, loc="upper left", bbox_to_anchor=_VITALS_LAYOUT["legend"])
        if not points:
            top.text(0.5, 0.5, "No readings recorded", transform=top.transAxes, ha="center", va="center")

    return _render(draw, (7.5, 4.2), title, _vitals_summary(points, series, thresholds, clock), layout=None)


def score_trend(scores, *, sessions=(), doses=(), response_baseline=None, title="PHQ-9 and GAD-7 over time"):
    """PHQ-9 and GAD-7 totals over time, sessions marked (dose labelled), response and remission lines.

    `scores`: (taken at, instrument, total) tuples or objects with those attributes (a `Score` row);
    times are aware datetimes in the zone to print, or dates. `sessions`: session dates or datetimes.
    `doses`: (when, mg/kg) pairs labelled at their session's mark. `response_baseline`: the series'
    baseline PHQ-9 (default: the first PHQ-9 given); response is at or below half of it.

    The same data gives the same SVG, so the last TREND_CACHE_SIZE pictures are kept in this process:
    drawing one takes matplotlib 50-150 ms, and a chart is opened far more often than its scores change.
    The key holds every value drawn, and each time's zone (an instant prints differently in another).
    """
    rows = tuple(sorted((_score_row(score) for score in scores), key=lambda row: (_sort_key(row[0]), *row[1:])))
    sessions, doses = tuple(sessions), tuple(tuple(pair) for pair in doses)
    zones = tuple(sorted({str(when.tzinfo) for when in (*(row[0] for row in rows), *sessions, *(w for w, _ in doses))
                          if isinstance(when, datetime)}))
    return _score_trend(rows, sessions, doses, response_baseline, title, zones)


#: Score trends kept drawn per process (each about 20-40 KB of SVG text).
TREND_CACHE_SIZE = 128


@functools.lru_cache(maxsize=TREND_CACHE_SIZE)
def _score_trend(rows, sessions, doses, response_baseline, title, _zones):
    phq9 = [row for row in rows if row[1] == PHQ9]
    gad7 = [row for row in rows if row[1] == GAD7]
    baseline = response_baseline if response_baseline is not None else (phq9[0][2] if phq9 else None)
    response_at = None if baseline is None else baseline * RESPONSE_FRACTION
    sessions, doses = list(sessions), list(doses)
    whens = [row[0] for row in rows] + sessions + [when for when, _ in doses]
    xs, tz = _xs(whens)
    at = dict(zip(map(_sort_key, whens), xs, strict=True))

    def draw(fig):
        ax = fig.subplots()
        for name, marker, chosen in ((PHQ9, "o", phq9), (GAD7, "s", gad7)):
            _line(ax, [(at[_sort_key(when)], total) for when, _, total in chosen], f"{name} total",
                  _COLOURS[name], marker)
        if response_at is not None:
            _threshold(ax, response_at, f"Response ≤ {_number(response_at)}", style=(0, (6, 3)), left=True,
                       legend=f"Response: PHQ-9 at or below {_number(response_at)} (half of baseline "
                              f"{_number(baseline)})")
        _threshold(ax, REMISSION_BELOW, f"Remission < {REMISSION_BELOW}", style=(0, (2, 2)),
                   legend=f"Remission: PHQ-9 below {REMISSION_BELOW}")
        if sessions:  # one collection, not a line each: a chart of 1,000 sessions draws in a second, not five
            ax.vlines([at[_sort_key(when)] for when in sessions], 0, 1, transform=ax.get_xaxis_transform(),
                      colors=_COLOURS["session"], linewidth=0.6, linestyles=[(0, (1, 2))], label="Session")
        for when, mg_per_kg in doses:
            if mg_per_kg is not None:
                ax.annotate(f"{_number(mg_per_kg)} mg/kg", (at[_sort_key(when)], 27), fontsize=6, rotation=90,
                            ha="right", va="top", color=_COLOURS["session"])
        ax.set_ylim(0, 27.5)
        ax.set_yticks(range(0, 28, 5))
        ax.set_ylabel("Total score")
        ax.set_title(title, loc="left")
        _x_range(ax, xs, at_least=7)
        _date_axis(ax, tz, "%b %Y" if xs and max(xs) - min(xs) > 180 else "%d %b")
        ax.set_xlabel("Date" + (f" ({_zone_name(tz, xs)})" if tz is not None else ""))
        entries = _legend(fig, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=3)
        layout = _TREND_LAYOUT
        fig.subplots_adjust(left=layout["left"], right=layout["right"], top=layout["top"],
                            bottom=layout["bottom"] + layout["legend_row"] * max(0, -(-entries // 3) - 1))
        if not rows:
            ax.text(0.5, 0.5, "No scores recorded", transform=ax.transAxes, ha="center", va="center")
        if not whens:  # no date to show: no ticks (they would all read the epoch's day)
            ax.set_xticks([])

    return _render(draw, (7.5, 3.6), title, _trend_summary(phq9, gad7, baseline, response_at, sessions),
                   layout=None)



def outcome_bars(groups, *, title="Response and remission by protocol and quarter"):
    """Response and remission rates as paired horizontal bars, one pair per group, each labelled with the
    counts behind it ("4 of 9"). `groups`: objects with protocol, period, response and remission (rates
    with count, of and percent; percent None for an empty group, drawn as no bar and "no series yet")."""
    groups = list(groups)
    names = [f"{group.protocol}, {group.period}" for group in groups]

    def draw(fig):
        ax = fig.subplots()
        for offset, key, colour, label in ((-0.2, "response", _COLOURS[PHQ9], "Response"),
                                           (0.2, "remission", _COLOURS[GAD7], "Remission")):
            rates = [getattr(group, key) for group in groups]
            ys = [index + offset for index in range(len(groups))]
            ax.barh(ys, [rate.percent or 0 for rate in rates], height=0.38, color=colour, label=label)
            for y, rate in zip(ys, rates, strict=True):
                text = "no series yet" if rate.percent is None else f"{rate.count} of {rate.of} ({rate.percent} %)"
                ax.annotate(text, ((rate.percent or 0), y), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=6.5, color="#333333")
        ax.set_yticks(range(len(groups)), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 118)
        ax.set_xticks(range(0, 101, 25))
        ax.set_xlabel("Series (%)")
        ax.set_title(title, loc="left")
        _legend(fig, loc="outside lower center", ncols=2)
        if not groups:
            ax.text(0.5, 0.5, "No series yet", transform=ax.transAxes, ha="center", va="center")

    height = 1.4 + 0.45 * max(1, len(groups))
    return _render(draw, (7.5, height), title, _outcome_summary(groups, names))


# --- drawing helpers ---------------------------------------------------------------------------

def _line(ax, pairs, label, colour, marker):
    if pairs:
        ax.plot([x for x, _ in pairs], [y for _, y in pairs], color=colour, marker=marker, markersize=3.5,
                linewidth=1.4, label=label)


def _legend(fig, **options):
    """The figure's legend of every labelled line; returns how many entries it has."""
    handles = [handle for ax in fig.axes for handle in ax.get_legend_handles_labels()[0]]
    if handles:
        fig.legend(handles=handles, frameon=False, **options)
    return len(handles)


def _threshold(ax, value, label, style=(0, (5, 3)), legend=None, left=False):
    """A dashed horizontal line labelled at one end (and named in the legend when `legend` is given)."""
    if value is not None:
        ax.axhline(value, color=_COLOURS["threshold"], linestyle=style, linewidth=1, label=legend)
        ax.annotate(label, (0.0 if left else 1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(2 if left else -2, 2), textcoords="offset points", ha="left" if left else "right",
                    va="bottom", fontsize=6.5, color="#333333")


def _x_range(ax, xs, *, at_least, from_zero=False):
    """The data's span plus a margin, widened to `at_least` (matplotlib would widen one point to years);
    `from_zero`: minutes since the start, so the axis never shows minutes before it."""
    if xs:
        low, high = min(xs), max(xs)
        margin = max((high - low) * 0.04, (at_least - (high - low)) / 2, 0)
        left = max(low - margin, min(low, 0) - (high - low) * 0.04) if from_zero else low - margin
        ax.set_xlim(left, max(high + margin, left + at_least))


def _date_axis(ax, tz, fmt):
    from matplotlib import dates

    locator = dates.AutoDateLocator(tz=tz, minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.DateFormatter(fmt, tz=tz))


def _render(draw, size, title, description, layout="constrained"):
    import matplotlib as mpl
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    buffer = io.StringIO()
    with _LOCK, mpl.rc_context(_RC):
        figure = Figure(figsize=size, dpi=72, layout=layout)
        draw(figure)
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return _inline(buffer.getvalue(), title, description)


def _inline(text, title, description):
    """The SVG as CSP-safe inline markup with its text alternative; ids prefixed by the content's digest."""
    root = ET.fromstring(text)  # noqa: S314  # nosec B314  # matplotlib's own output, never user-supplied XML
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in (f"{{{SVG_NS}}}metadata", f"{{{SVG_NS}}}style"):
                parent.remove(child)
    prefix = "c" + hashlib.sha256(text.encode()).hexdigest()[:8] + "-"
    for element in root.iter():
        _restyle(element, prefix)
    for key in ("width", "height"):
        root.set(key, root.get(key).removesuffix("pt"))
    root.attrib.pop("version", None)
    root.set("class", "chart-svg")
    root.set("role", "img")
    root.set("aria-labelledby", f"{prefix}title {prefix}desc")
    root.set("stroke-linejoin", "round")
    root.set("stroke-linecap", "butt")
    for tag, words in (("desc", description), ("title", title)):
        element = ET.Element(f"{{{SVG_NS}}}{tag}", id=f"{prefix}{tag}")
        element.text = words
        root.insert(0, element)
    # Registered again each time: WeasyPrint and pyHanko register XMP prefixes in ElementTree's global
    # map, which can drop ours, and then tostring() writes <ns0:svg>, which no browser draws inline.
    ET.register_namespace("", SVG_NS)
    return ET.tostring(root, encoding="unicode")


def _restyle(element, prefix):
    style = element.attrib.pop("style", None)
    if style:
        for declaration in style.split(";"):
            name, _, value = declaration.partition(":")
            name, value = name.strip(), value.strip()
            if name == "font-family":
                value = value.replace("'", "") + ", sans-serif"
            if name in _PRESENTATION:
                element.set(name, value)
    if "id" in element.attrib:
        element.set("id", prefix + element.get("id"))
    href = element.attrib.pop(XLINK_HREF, None) or element.attrib.pop("href", None)
    if href is not None:
        if not href.startswith("#"):
            raise ValueError("charts never reference anything outside themselves")
        element.set("href", "#" + prefix + href[1:])
    for name in ("clip-path", "mask", "marker-start", "marker-end"):
        if name in element.attrib:
            element.set(name, re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", element.get(name)))


# --- data helpers ------------------------------------------------------------------------------

def _score_row(score):
    if isinstance(score, tuple):
        return score
    return score.taken_at, score.instrument, score.total


def _sort_key(when):
    if isinstance(when, datetime):
        return when.timestamp() if when.tzinfo else when.replace(tzinfo=UTC).timestamp()
    if isinstance(when, date):
        return datetime.combine(when, time(12), tzinfo=UTC).timestamp()
    return float(when)


def _xs(whens):
    """x values for matplotlib (minutes as given; times as date numbers) and the zone to print times in."""
    from matplotlib import dates

    tz = next((when.tzinfo for when in whens if isinstance(when, datetime) and when.tzinfo), None)
    xs = []
    for when in whens:
        if isinstance(when, datetime):
            xs.append(dates.date2num(when if when.tzinfo else when.replace(tzinfo=tz or UTC)))
        elif isinstance(when, date):
            xs.append(dates.date2num(datetime.combine(when, time(12), tzinfo=tz or UTC)))
        else:
            xs.append(float(when))
    return xs, tz


def _zone_name(tz, xs):
    from matplotlib import dates

    return dates.num2date(xs[0], tz=tz).tzname() if xs else str(tz)


def _number(value):
    return f"{float(value):g}"


def _when(when):
    if isinstance(when, datetime):
        return when.strftime("%Y-%m-%d %H:%M")
    if isinstance(when, date):
        return when.isoformat()
    return f"minute {_number(when)}"


def _range(values, unit):
    values = [value for value in values if value is not None]
    if not values:
        return "none recorded"
    low, high = min(values), max(values)
    return f"{_number(low)}{unit}" if low == high else f"{_number(low)} to {_number(high)}{unit}"


def _vitals_summary(points, series, thresholds, clock):
    if not points:
        return "No vital signs were recorded."
    span = f"{_when(points[0][0])} to {_when(points[-1][0])}" if clock else \
        f"minute {_number(points[0][0])} to minute {_number(points[-1][0])}"
    systolic, diastolic = thresholds.get("alert_systolic"), thresholds.get("alert_diastolic")
    spo2 = thresholds.get("alert_spo2_below")
    high = sum(1 for point in points if (point[1] is not None and systolic is not None and point[1] >= systolic)
               or (point[2] is not None and diastolic is not None and point[2] >= diastolic))
    low = sum(1 for point in points if point[4] is not None and spo2 is not None and point[4] < spo2)
    return (f"{len(points)} readings from {span}. "
            f"Systolic {_range([v for _, v in series['systolic']], ' mmHg')}; "
            f"diastolic {_range([v for _, v in series['diastolic']], ' mmHg')}; "
            f"heart rate {_range([v for _, v in series['heart_rate']], ' beats per minute')}; "
            f"SpO2 {_range([v for _, v in series['spo2']], ' %')}. "
            f"Alert thresholds: systolic {_or_none(systolic, ' mmHg')}, diastolic {_or_none(diastolic, ' mmHg')}, "
            f"SpO2 below {_or_none(spo2, ' %')}. "
            f"Readings at or above a blood-pressure alert: {high}; SpO2 below its alert: {low}.")


def _or_none(value, unit):
    return "not set" if value is None else f"{_number(value)}{unit}"


def _trend_summary(phq9, gad7, baseline, response_at, sessions):
    if not phq9 and not gad7:
        return "No PHQ-9 or GAD-7 scores were recorded."
    parts = []
    for name, rows in ((PHQ9, phq9), (GAD7, gad7)):
        if rows:
            listed = ", ".join(f"{total} on {_when(when)}" for when, _, total in rows)
            parts.append(f"{name} ({len(rows)} scores): {listed}.")
        else:
            parts.append(f"No {name} scores.")
    if response_at is not None:
        parts.append(f"Response line at {_number(response_at)} (half of the baseline PHQ-9 of {_number(baseline)}).")
    parts.append(f"Remission line: PHQ-9 below {REMISSION_BELOW}.")
    parts.append(f"{len(sessions)} sessions marked.")
    return " ".join(parts)


def _outcome_summary(groups, names):
    if not groups:
        return "No series yet."
    return " ".join(f"{name}: response {group.response}, remission {group.remission}."
                    for name, group in zip(names, groups, strict=True))
