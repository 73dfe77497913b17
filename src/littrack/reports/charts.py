"""The PNG charts of a report, drawn with matplotlib's Agg canvas directly.

No pyplot, so no global backend state and nothing interactive; matplotlib is imported only
when a chart is drawn. Colours are fixed per trial status so readers learn them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.reports.blocks import Image
from littrack.store import Store

if TYPE_CHECKING:
    import pandas as pd

CHARTS_DIR = "charts"
PHASE_ORDER = ("EARLY_PHASE1", "PHASE1", "PHASE1|PHASE2", "PHASE2", "PHASE2|PHASE3", "PHASE3",
               "PHASE4", "NA")
# One colour per status, the same in every report, so readers learn them.
STATUS_COLOURS = {
    "NOT_YET_RECRUITING": "#a6d96a", "RECRUITING": "#1a9641",
    "ENROLLING_BY_INVITATION": "#66c2a5", "ACTIVE_NOT_RECRUITING": "#3288bd",
    "COMPLETED": "#5e4fa2", "SUSPENDED": "#fdae61", "TERMINATED": "#d7191c",
    "WITHDRAWN": "#8c510a", "UNKNOWN": "#bababa",
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg: no GUI, no pyplot state
    return fig


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})


def publications_grid(data: pd.DataFrame) -> tuple[list[int], dict[str, list[int]]]:
    """Every year from the first to the last publication, and per topic its count in each
    (0 for a year without one), so gaps show as gaps and no topic hides behind another."""
    if data.empty:
        return [], {}
    years = list(range(int(data["year"].min()), int(data["year"].max()) + 1))
    grid: dict[str, list[int]] = {}
    for topic, rows in data.groupby("topic", sort=True):
        counts = {int(y): int(n) for y, n in zip(rows["year"], rows["n"], strict=True)}
        grid[str(topic)] = [counts.get(y, 0) for y in years]
    return years, grid


def publications_figure(years: list[int], grid: dict[str, list[int]]) -> Any:
    """One panel of bars per topic, on one shared year axis *and one shared count axis*:
    panels stacked for comparison must not draw 3 articles as tall as 40."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(8.5, 1.0 + 1.6 * len(grid))
    axes = fig.subplots(len(grid), 1, squeeze=False, sharex=True, sharey=True)[:, 0]
    top = max(1, max(max(counts) for counts in grid.values())) * 1.1
    for ax, (topic, counts) in zip(axes, grid.items(), strict=True):
        ax.bar(years, counts, width=0.8, color="#3288bd")
        ax.set_title(topic, loc="left", fontsize=10)
        ax.set_ylabel("articles", fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax.set_ylim(bottom=0, top=top)
        ax.grid(axis="y", color="#e5e5e5")
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(len(years), 12)))
    axes[-1].set_xlim(years[0] - 0.6, years[-1] + 0.6)
    axes[-1].set_xlabel("publication year")
    fig.suptitle("Publications per year, by topic")
    return fig


def chart_publications(store: Store, path: Path) -> Image | None:
    """Publications per year: one panel of bars per topic (``publications_figure``)."""
    years, grid = publications_grid(store.query("publications_per_year"))
    if not years:
        return None
    _save(publications_figure(years, grid), path)
    return Image(f"{CHARTS_DIR}/{path.name}",
                 "Bar charts: publications per year, one panel per topic, empty years as zero")


def _phase_label(phase: str) -> str:
    """``PHASE2|PHASE3`` → ``phase 2/3``; ``NA`` → ``no phase``; unknown values as they are."""
    if phase == "NA":
        return "no phase"
    if phase == "EARLY_PHASE1":
        return "early phase 1"
    parts = phase.split("|")
    if all(p.startswith("PHASE") for p in parts):
        return "phase " + "/".join(p.removeprefix("PHASE") for p in parts)
    return phase.replace("|", "/").replace("_", " ").lower()


def _status_label(status: str) -> str:
    return status.replace("_", " ").lower()


def chart_trials(store: Store, path: Path) -> Image | None:
    """Trials by phase, stacked by overall status: one panel per topic."""
    from matplotlib.ticker import MaxNLocator

    data = store.query("trials_by_phase_status")
    if data.empty:
        return None
    topics = sorted(data["topic"].unique())
    statuses = sorted(data["status"].unique(),
                      key=lambda s: (list(STATUS_COLOURS).index(s) if s in STATUS_COLOURS
                                     else len(STATUS_COLOURS), s))
    phases = sorted(data["phase"].unique(),
                    key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER
                                   else len(PHASE_ORDER), p))
    fig = _figure(8.5, 1.2 + 0.35 * len(phases) * len(topics) + 0.5 * len(topics))
    axes = fig.subplots(len(topics), 1, squeeze=False, sharex=True)[:, 0]
    fallback = iter(["#e78ac3", "#a6cee3", "#b2df8a", "#ffd92f", "#999999"] * 10)
    colours = {s: STATUS_COLOURS.get(s) or next(fallback) for s in statuses}
    for ax, topic in zip(axes, topics, strict=True):
        rows = data[data["topic"] == topic]
        left = [0] * len(phases)
        for status in statuses:
            widths = [int(rows[(rows["phase"] == p) & (rows["status"] == status)]["n"].sum())
                      for p in phases]
            ax.barh([_phase_label(p) for p in phases], widths, left=left,
                    color=colours[status], label=_status_label(status), height=0.7)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, total in enumerate(left):
            if total:
                ax.annotate(str(total), (total, y), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=8, color="#444444")
        ax.set_title(topic, loc="left", fontsize=10)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#e5e5e5")
        ax.set_axisbelow(True)
    axes[-1].set_xlabel("trials")
    axes[-1].set_xlim(0, max(1, int(data.groupby(["topic", "phase"])["n"].sum().max())) * 1.08)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=9,
               title="overall status", title_fontsize=9)
    fig.suptitle("Trials by phase and status, by topic")
    _save(fig, path)
    return Image(f"{CHARTS_DIR}/{path.name}",
                 "Bar chart: trials per phase, coloured by overall status, for each topic")


def draw_charts(store: Store, folder: Path) -> list[Image]:
    """Draw every chart with data into ``folder/charts``; the images to show, in order."""
    charts_dir = folder / CHARTS_DIR
    charts_dir.mkdir(exist_ok=True)
    return [c for c in (chart_publications(store, charts_dir / "publications_per_year.png"),
                        chart_trials(store, charts_dir / "trials_by_phase_status.png"))
            if c is not None]
