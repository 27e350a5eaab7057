"""The report's charts: Plotly figures as ``<div>`` fragments (plotly.js is inlined once by the page).

Every function takes figures already computed by :mod:`churnguard.reports.data` and the labels
in the report's language, and returns the HTML of one chart.  The figures use a small template
of their own (the default Plotly template would add ~10 KB of JSON to every chart).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "PingFang SC", "Hiragino Sans GB", '
    '"Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif'
)
#: Qualitative palette (colour-blind safe, Okabe–Ito order with a blue first).
PALETTE = ("#2f6db5", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7a7a7a", "#e8d44d", "#6b4c9a", "#8c6d31")
CHURN = "#c0392b"
RETAIN = "#2f6db5"
MUTED = "#9aa5b1"
GRID = "#e6e9ee"
CONFIG = {"displayModeBar": False, "responsive": True}

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 12, "color": "#1f2933"},
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 56, "r": 16, "t": 40, "b": 44},
        xaxis={"gridcolor": GRID, "linecolor": "#c5ccd3", "zeroline": False, "automargin": True},
        yaxis={"gridcolor": GRID, "linecolor": "#c5ccd3", "zeroline": False, "automargin": True},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        hoverlabel={"font": {"family": FONT}},
        title={"font": {"size": 14}, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
    )
)


def _html(fig: go.Figure, div_id: str, height: int) -> str:
    fig.update_layout(template=TEMPLATE, height=height, autosize=True)
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def _pct_axis(fig: go.Figure, axis: str = "yaxis") -> None:
    fig.update_layout({axis: {"tickformat": ".1%", "rangemode": "tozero"}})


def branch_rates(
    div_id: str,
    *,
    names: Sequence[str],
    rates: Sequence[float | None],
    previous: Sequence[float | None],
    average: float | None,
    labels: dict[str, str],
) -> str:
    """Horizontal bars of each branch's churn rate, a marker for its previous rate, a line for the scope."""
    fig = go.Figure()
    fig.add_bar(
        y=list(names),
        x=list(rates),
        orientation="h",
        name=labels["current"],
        marker_color=CHURN,
        text=[None if r is None else f"{r:.1%}" for r in rates],
        textposition="inside",
        insidetextanchor="start",
        textfont={"color": "white"},
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    )
    fig.add_scatter(
        y=list(names),
        x=list(previous),
        mode="markers",
        name=labels["previous"],
        marker={"symbol": "line-ns", "size": 18, "line": {"width": 3, "color": "#1f2933"}},
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    )
    if average is not None:
        fig.add_vline(x=average, line_dash="dash", line_color=MUTED)
        fig.add_annotation(
            x=average, y=1, yref="paper", text=labels["average"], showarrow=False, yanchor="bottom", font_size=11
        )
    height = max(300, 110 + 40 * len(names))
    top, bottom = 72, 44
    fig.update_layout(
        title=labels["title"],
        xaxis={"tickformat": ".0%", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
        bargap=0.35,
        margin={"t": top, "b": bottom},
        # The legend sits a fixed 6 px above the plot, whatever the chart's height (not under the title).
        legend={"y": 1 + 6 / (height - top - bottom)},
    )
    return _html(fig, div_id, height)


def churn_trend(
    div_id: str,
    *,
    periods: Sequence[str],
    rates: Sequence[float | None],
    current_from: str | None,
    series: dict[str, tuple[Sequence[str], Sequence[float | None]]],
    labels: dict[str, str],
) -> str:
    """The churn rate per period over the previous and the current range (shaded), with a thin line per branch."""
    fig = go.Figure()
    for i, (name, (xs, ys)) in enumerate(series.items()):
        fig.add_scatter(
            x=list(xs),
            y=list(ys),
            mode="lines",
            name=name,
            line={"width": 1.3, "color": PALETTE[(i + 1) % len(PALETTE)]},
            opacity=0.75,
            hovertemplate=f"{name} %{{x}}: %{{y:.2%}}<extra></extra>",
        )
    fig.add_scatter(
        x=list(periods),
        y=list(rates),
        mode="lines+markers",
        name=labels["total"],
        line={"width": 3.2, "color": CHURN},
        marker={"size": 6},
        hovertemplate=f"{labels['total']} %{{x}}: %{{y:.2%}}<extra></extra>",
    )
    if current_from is not None and current_from in periods:
        fig.add_vrect(
            x0=current_from,
            x1=periods[-1],
            fillcolor="#f6e3e1",
            opacity=0.45,
            line_width=0,
            layer="below",
            annotation_text=labels["current"],
            annotation_position="top left",
            annotation_font_size=11,
        )
        first = list(periods).index(current_from)
        if first > 0:
            fig.add_annotation(
                x=periods[0],
                y=1,
                yref="paper",
                text=labels["previous"],
                showarrow=False,
                xanchor="left",
                yanchor="top",
                font={"size": 11, "color": MUTED},
            )
    fig.update_layout(title=labels["title"], xaxis={"type": "category", "tickangle": -45}, margin={"t": 72})
    _pct_axis(fig)
    return _html(fig, div_id, 400)


def horizontal_shares(
    div_id: str, *, names: Sequence[str], counts: Sequence[int], shares: Sequence[float | None], title: str, color: str
) -> str:
    """Horizontal bars: churned customers per category, labelled with the count and its share."""
    fig = go.Figure(
        go.Bar(
            y=list(names),
            x=list(counts),
            orientation="h",
            marker_color=color,
            text=[f"{c:,} · {s:.0%}" if s is not None else f"{c:,}" for c, s in zip(counts, shares, strict=True)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, xaxis={"rangemode": "tozero"}, bargap=0.3)
    fig.update_xaxes(range=[0, max(counts or [1]) * 1.3])
    return _html(fig, div_id, max(240, 70 + 30 * len(names)))


def reason_mix(div_id: str, *, periods: Sequence[str], series: dict[str, Sequence[float | None]], title: str) -> str:
    """Stacked 100 % bars: each reason's share of the churn per period."""
    fig = go.Figure()
    for name, shares in series.items():
        fig.add_bar(
            x=list(periods), y=list(shares), name=name, hovertemplate=f"{name} %{{x}}: %{{y:.1%}}<extra></extra>"
        )
    fig.update_layout(
        title=title,
        barmode="stack",
        yaxis={"tickformat": ".0%", "range": [0, 1]},
        xaxis={"type": "category"},
        legend={"orientation": "v", "y": 1, "yanchor": "top", "x": 1.02, "xanchor": "left"},
        margin={"r": 170},
    )
    return _html(fig, div_id, 340)


def loss_by_branch(
    div_id: str,
    *,
    names: Sequence[str],
    revenue: Sequence[float | None],
    profit: Sequence[float | None] | None,
    labels: dict[str, str],
) -> str:
    """Grouped bars: lost revenue (and churn loss in profit) per branch."""
    fig = go.Figure()
    fig.add_bar(x=list(names), y=list(revenue), name=labels["revenue"], marker_color=CHURN)
    if profit is not None:
        fig.add_bar(x=list(names), y=list(profit), name=labels["profit"], marker_color="#e6a199")
    fig.update_layout(title=labels["title"], barmode="group", yaxis={"tickformat": "~s"}, margin={"t": 72})
    return _html(fig, div_id, 340)


def revenue_waterfall(div_id: str, *, steps: Sequence[tuple[str, float, str]], title: str) -> str:
    """A waterfall of recurring revenue: ``steps`` are (label, value, measure) with measure absolute|relative|total."""
    fig = go.Figure(
        go.Waterfall(
            x=[s[0] for s in steps],
            y=[s[1] for s in steps],
            measure=[s[2] for s in steps],
            increasing={"marker": {"color": "#2e8b57"}},
            decreasing={"marker": {"color": CHURN}},
            totals={"marker": {"color": RETAIN}},
            connector={"line": {"color": MUTED, "width": 1}},
            texttemplate="%{y:,.0f}",
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_layout(title=title, yaxis={"tickformat": "~s"}, showlegend=False, margin={"t": 56})
    return _html(fig, div_id, 340)


def cohort_heatmap(
    div_id: str,
    *,
    cohorts: Sequence[str],
    ages: Sequence[int],
    values: Sequence[Sequence[float | None]],
    labels: dict[str, str],
) -> str:
    """Cohort × age heatmap of the share still a customer, annotated with the value."""
    text = [["" if v is None else f"{v * 100:.0f}" for v in row] for row in values]
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in values],
            x=list(ages),
            y=list(cohorts),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 9},
            colorscale=[[0, "#b2182b"], [0.5, "#fddbc7"], [0.75, "#d1e5f0"], [1, "#2166ac"]],
            zmin=0.5 if _min_value(values) >= 0.5 else 0,
            zmax=1,
            hoverongaps=False,
            colorbar={"tickformat": ".0%", "thickness": 12},
            hovertemplate=f"{labels['cohort']} %{{y}}, {labels['age']} %{{x}}: %{{z:.1%}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=labels["title"],
        xaxis={"title": labels["age"], "dtick": 1 if len(ages) <= 12 else 3, "gridcolor": "rgba(0,0,0,0)"},
        yaxis={"autorange": "reversed", "type": "category", "gridcolor": "rgba(0,0,0,0)"},
        margin={"l": 72},
    )
    return _html(fig, div_id, max(320, 90 + 17 * len(cohorts)))


def _min_value(values: Sequence[Sequence[float | None]]) -> float:
    found = [v for row in values for v in row if v is not None]
    return min(found) if found else 0.0


def survival_curves(
    div_id: str,
    *,
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    labels: dict[str, str],
) -> str:
    """Kaplan–Meier step curves, one per group."""
    fig = go.Figure()
    for name, (xs, ys) in curves.items():
        fig.add_scatter(
            x=list(xs),
            y=list(ys),
            mode="lines",
            line_shape="hv",
            name=name,
            hovertemplate=f"{name}, %{{x:.0f}}: %{{y:.1%}}<extra></extra>",
        )
    fig.add_hline(y=0.5, line_dash="dot", line_color=MUTED)
    fig.update_layout(
        title=labels["title"],
        xaxis={"title": labels["x"], "rangemode": "tozero"},
        yaxis={"title": labels["y"], "tickformat": ".0%", "range": [0, 1.02]},
        margin={"t": 72},
    )
    return _html(fig, div_id, 380)


def line(div_id: str, *, xs: Sequence[Any], ys: Sequence[float | None], title: str, x_title: str) -> str:
    """One line of shares (e.g. the average retention curve)."""
    fig = go.Figure(go.Scatter(x=list(xs), y=list(ys), mode="lines+markers", line={"color": RETAIN, "width": 2.5}))
    fig.update_layout(title=title, xaxis={"title": x_title}, yaxis={"tickformat": ".0%"}, showlegend=False)
    return _html(fig, div_id, 280)


def grouped_shares(
    div_id: str, *, names: Sequence[str], series: dict[str, Sequence[float | None]], title: str, horizontal: bool
) -> str:
    """Grouped bars of shares (e.g. share of customers and share of value per tier or segment)."""
    fig = go.Figure()
    colors = (RETAIN, PALETTE[1])
    cat, val = ("y", "x") if horizontal else ("x", "y")
    for i, (label, values) in enumerate(series.items()):
        vals = list(values)
        fig.add_bar(
            **({"y": list(names), "x": vals, "orientation": "h"} if horizontal else {"x": list(names), "y": vals}),
            name=label,
            marker_color=colors[i % len(colors)],
            text=[None if v is None else f"{v:.0%}" for v in vals],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"{label} %{{{cat}}}: %{{{val}:.1%}}<extra></extra>",
        )
    axis = {"tickformat": ".0%", "rangemode": "tozero"}
    if horizontal:
        fig.update_layout(xaxis=axis, yaxis={"autorange": "reversed"})
        height = max(300, 110 + 44 * len(names))
    else:
        fig.update_layout(yaxis=axis, xaxis={"type": "category"})
        height = 340
    fig.update_layout(title=title, barmode="group", bargap=0.25, margin={"t": 72})
    return _html(fig, div_id, height)


def holdout(
    div_id: str,
    *,
    buckets: Sequence[str],
    actual: Sequence[float],
    predicted: Sequence[float],
    labels: dict[str, str],
) -> str:
    """BG/NBD holdout check: actual (bars) and predicted (line) mean repeat purchases per calibration frequency."""
    fig = go.Figure()
    fig.add_bar(
        x=list(buckets),
        y=list(actual),
        name=labels["actual"],
        marker_color=MUTED,
        hovertemplate=f"{labels['actual']} %{{x}}: %{{y:.2f}}<extra></extra>",
    )
    fig.add_scatter(
        x=list(buckets),
        y=list(predicted),
        mode="lines+markers",
        name=labels["predicted"],
        line={"color": RETAIN, "width": 2.5},
        marker={"size": 7},
        hovertemplate=f"{labels['predicted']} %{{x}}: %{{y:.2f}}<extra></extra>",
    )
    fig.update_layout(
        title=labels["title"],
        xaxis={"title": labels["x"], "type": "category"},
        yaxis={"title": labels["y"], "rangemode": "tozero"},
        margin={"t": 72},
    )
    return _html(fig, div_id, 340)
