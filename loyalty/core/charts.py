"""Charts drawn on the server as SVG (pygal), inlined in the page: no script, nothing fetched.

Every page that shows a chart also shows its numbers in a table, for those who read rather than look.
"""

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

PALETTE = ("#1f6feb", "#2da44e", "#d29922", "#9aa4b2", "#8250df")


def _style(colors) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        colors=tuple(colors) or PALETTE,
        font_family="system-ui, sans-serif",
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        value_font_size=11,
    )


def _render(chart, labels: list[str], series, *, majors: int) -> SafeString:
    chart.x_labels = labels
    chart.x_labels_major = labels if len(labels) <= 10 else labels[:: max(len(labels) // majors, 1)]
    for title, values in series:
        chart.add(title, values)
    return mark_safe(chart.render(is_unicode=True, disable_xml_declaration=True))  # pygal escapes what it draws


def _options(series, *, y_title: str, colors, half: bool, height: int | None) -> dict:
    return {
        "style": _style(colors),
        "js": [],  # pygal's tooltips script would come from a CDN
        "height": height or (300 if half else 280),
        "width": 480 if half else 760,
        "x_label_rotation": 0,
        "show_minor_x_labels": False,
        "truncate_label": -1,
        "legend_at_bottom": True,
        "show_legend": len(series) > 1,
        "y_title": y_title,
        "explicit_size": False,
    }


def bar_chart(
    labels: list[str],
    series: list[tuple[str, list]],
    *,
    y_title: str = "",
    colors=(),
    stacked: bool = False,
    half: bool = False,
) -> SafeString:
    """Bars per label, one colour per series; `half` for a chart in half a page's width."""
    chart_class = pygal.StackedBar if stacked else pygal.Bar
    chart = chart_class(print_values=False, **_options(series, y_title=y_title, colors=colors, half=half, height=None))
    return _render(chart, labels, series, majors=3 if half else 6)


def line_chart(
    labels: list[str],
    series: list[tuple[str, list]],
    *,
    y_title: str = "",
    colors=(),
    y_range: tuple[float, float] | None = None,
    height: int | None = None,
) -> SafeString:
    """Lines over labels (days, months), dots only while there are few points."""
    chart = pygal.Line(
        show_dots=len(labels) <= 31,
        range=y_range,
        **_options(series, y_title=y_title, colors=colors, half=False, height=height),
    )
    return _render(chart, labels, series, majors=6)
