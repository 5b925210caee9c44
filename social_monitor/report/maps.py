"""Choropleth maps as inline SVG: one ``<path>`` per area, drawn from shapely geometry.

Coordinates in degrees (GeoJSON) are projected with the cosine of the mean latitude; projected coordinates
(metres, a shapefile in ETRS89/UTM, say) are drawn as they are. Suppressed values get the hatch pattern
``#gesperrt`` that :data:`SVG_DEFS` defines once per page.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import mapclassify
import matplotlib
import numpy as np
from matplotlib.colors import to_hex
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

SUPPRESSED_FILL = "url(#gesperrt)"
MISSING_FILL = "#eeeeee"
SVG_DEFS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="gesperrt" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#d9d9d9"/><line x1="0" y1="0" x2="0" y2="6" stroke="#808080" '
    'stroke-width="2"/></pattern></defs></svg>'
)


def german_number(value: float | None, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u2009").replace(".", ",").replace("-", "\u2212")


@dataclass
class Projection:
    """Maps geometry coordinates to SVG pixels for a fixed width."""

    minx: float
    maxy: float
    xscale: float
    yscale: float
    width: int
    height: int
    degrees: bool = False  # coordinates in degrees (GeoJSON), else projected metres

    @classmethod
    def fit(cls, geometries: list[BaseGeometry], width: int) -> Projection:
        bounds = np.array([g.bounds for g in geometries if not g.is_empty])
        minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
        maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
        degrees = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
        aspect = math.cos(math.radians((miny + maxy) / 2)) if degrees else 1.0
        scale = (width - 4) / ((maxx - minx) * aspect)
        height = int(math.ceil((maxy - miny) * scale)) + 4
        return cls(minx, maxy, scale * aspect, scale, width, height, degrees)

    @property
    def metres_per_pixel(self) -> float:
        """Metres per pixel: degrees of latitude are 111.32 km; projected coordinates are taken as metres."""
        return (METRES_PER_DEGREE_LATITUDE if self.degrees else 1.0) / self.yscale

    def point(self, point) -> tuple[float, float]:
        return (point.x - self.minx) * self.xscale + 2, (self.maxy - point.y) * self.yscale + 2

    def ring(self, coords) -> str:
        xy = np.asarray(coords)[:, :2]
        xs = (xy[:, 0] - self.minx) * self.xscale + 2
        ys = (self.maxy - xy[:, 1]) * self.yscale + 2
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        return f"M{points}Z"

    def path_data(self, geometry: BaseGeometry) -> str:
        polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry] \
            if isinstance(geometry, Polygon) else [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]
        parts = []
        for polygon in polygons:
            parts.append(self.ring(polygon.exterior.coords))
            parts.extend(self.ring(interior.coords) for interior in polygon.interiors)
        return "".join(parts)


# The map furniture: area labels, the outlines of the top level, a scale bar and a north arrow. The scale bar is
# a round length (1, 2 or 5 times a power of ten metres) of about a fifth of the map's width.
LABEL_FONT_PX = 8
SCALE_BAR_SPACE = 28  # pixels below the map for the scale bar
METRES_PER_DEGREE_LATITUDE = 111_320.0


def round_length(metres: float) -> float:
    """The largest of 1, 2, 5 x 10^n that is at most ``metres`` (a scale bar's length)."""
    power = 10 ** math.floor(math.log10(metres))
    return max(step * power for step in (1, 2, 5) if step * power <= metres)


def length_text(metres: float) -> str:
    return f"{german_number(metres / 1000, 0 if metres >= 1000 else 1)} km"


class MapCanvas:
    """The path data of every area of one level, computed once and reused by every map of that level, with the
    label point of each area, the outlines of the top level (``outlines``) and the projection's metres per
    pixel (for the scale bar)."""

    def __init__(self, shapes: Mapping[str, BaseGeometry], width: int = 560, outline: BaseGeometry | None = None,
                 outlines: Mapping[str, BaseGeometry] | None = None):
        self.projection = Projection.fit(list(shapes.values()), width)
        self.paths = {area_id: self.projection.path_data(g) for area_id, g in sorted(shapes.items())}
        self.outline = self.projection.path_data(outline) if outline is not None else None
        self.outlines = [self.projection.path_data(g) for _, g in sorted((outlines or {}).items())]
        self.label_points = {area_id: self.projection.point(g.representative_point())
                             for area_id, g in sorted(shapes.items())}

    def furniture(self) -> list[str]:
        """Outlines of the top level, a scale bar below the map and a north arrow in its top right corner."""
        p = self.projection
        out = [f'<path class="outline" d="{data}" fill="none" stroke="#000" stroke-width="1.6" '
               'pointer-events="none"/>' for data in self.outlines]
        metres = round_length(p.metres_per_pixel * p.width / 5)
        bar = metres / p.metres_per_pixel
        y = p.height + 12
        out.append(f'<g class="scale-bar" data-metres="{metres:g}"><rect x="4" y="{y}" width="{bar / 2:.1f}" '
                   f'height="5" fill="#000"/><rect x="{4 + bar / 2:.1f}" y="{y}" width="{bar / 2:.1f}" height="5" '
                   f'fill="#fff" stroke="#000" stroke-width="0.8"/><text x="{8 + bar:.1f}" y="{y + 6}" '
                   f'font-size="10">{length_text(metres)}</text></g>')
        x = p.width - 16
        out.append(f'<g class="north-arrow"><path d="M{x},4 L{x + 7},22 L{x},17 L{x - 7},22 Z" fill="#000"/>'
                   f'<text x="{x}" y="33" font-size="10" text-anchor="middle">N</text></g>')
        return out

    def labels(self, text: Callable[[str], str]) -> list[str]:
        out = []
        for area_id, (x, y) in self.label_points.items():
            out.append(f'<text class="label" x="{x:.1f}" y="{y + LABEL_FONT_PX / 3:.1f}" '
                       f'font-size="{LABEL_FONT_PX}" text-anchor="middle">{html.escape(text(area_id))}</text>')
        return out

    def svg(self, fill: Callable[[str], str], title: Callable[[str], str], label: str, css_class: str = "map",
            highlight: str | None = None, area_label: Callable[[str], str] | None = None,
            symbols: Mapping[str, float] | None = None, symbol_title: Callable[[str], str] | None = None,
            symbol_legend: list[tuple[float, str]] | None = None) -> str:
        """The map: one ``<path>`` per area filled by ``fill``; ``area_label`` writes a label per area;
        ``symbols`` (area -> radius in pixels) draws a proportional circle per area. Maps with labels (the
        report's full-size maps) get the furniture (outlines, scale bar, north arrow); ``symbol_legend`` (radius,
        text) draws the reference circles below the map, inside the SVG, so that they scale with it."""
        p = self.projection
        legend_height = 2 * max((r for r, _ in symbol_legend or []), default=0) + 6
        height = p.height + (max(SCALE_BAR_SPACE, legend_height + 6) if area_label is not None else 0)
        out = [f'<svg class="{css_class}" role="img" aria-label="{html.escape(label)}" '
               f'viewBox="0 0 {p.width} {height}" width="{p.width}" height="{height}" '
               f'xmlns="http://www.w3.org/2000/svg">']
        for area_id, data in self.paths.items():
            stroke = ' stroke="#000" stroke-width="2.5"' if area_id == highlight else ""
            out.append(f'<path data-area-id="{html.escape(area_id)}" d="{data}" fill="{fill(area_id)}"{stroke}>'
                       f"<title>{html.escape(title(area_id))}</title></path>")
        if highlight is not None and highlight in self.paths:  # draw the highlighted border on top
            out.append(f'<path class="highlight" d="{self.paths[highlight]}" fill="none" stroke="#000" '
                       'stroke-width="2.5"/>')
        if area_label is not None:
            out.extend(self.furniture())
        for area_id, radius in sorted((symbols or {}).items(), key=lambda item: -item[1]):  # small ones on top
            x, y = self.label_points[area_id]
            tip = f"<title>{html.escape(symbol_title(area_id))}</title>" if symbol_title else ""
            out.append(f'<circle class="symbol" data-area-id="{html.escape(area_id)}" cx="{x:.1f}" cy="{y:.1f}" '
                       f'r="{radius:.2f}" fill="#c6532f" fill-opacity="0.75" stroke="#fff" stroke-width="0.8">'
                       f"{tip}</circle>")
        if area_label is not None:
            out.extend(self.labels(area_label))
        if symbol_legend:
            x, bottom = p.width * 0.4, height - 4
            out.append('<g class="symbol-legend">')
            for radius, text in symbol_legend:
                out.append(f'<circle cx="{x + radius:.1f}" cy="{bottom - radius:.1f}" r="{radius:.2f}" fill="#c6532f" '
                           f'fill-opacity="0.75" stroke="#fff" stroke-width="0.8"/><text x="{x + 2 * radius + 4:.1f}" '
                           f'y="{bottom - radius + 3:.1f}" font-size="10">{html.escape(text)}</text>')
                x += 2 * radius + 12 + 7 * len(text)
            out.append("</g>")
        out.append("</svg>")
        return "".join(out)


# Class breaks of a map, fixed across the report cycles: quantiles (mapclassify) of every published value of the
# indicator on the level in every cycle, rounded to the decimals the report shows; a class that no value falls in
# is merged into the next, so no legend shows an empty class or two classes with the same bounds.
CLASS_COUNT = 5
SYMBOL_MAX_RADIUS = 14.0


@dataclass(frozen=True)
class Classes:
    """Fixed classes of one indicator on one level: upper bounds (the last is the largest value), a colour per
    class (by the indicator's direction), and the smallest value."""

    lowest: float | None
    upper: tuple[float, ...]
    colours: tuple[str, ...]
    decimals: int

    @classmethod
    def fixed(cls, values: list[float], direction: str, decimals: int = 1, count: int = CLASS_COUNT) -> Classes:
        """Quantile classes of ``values`` (every cycle's published values): distinct rounded bounds, none empty."""
        # rounded as german_number shows them (Python's round, not numpy's: 0.05 shows as 0,1)
        shown = np.asarray([round(v, decimals) + 0.0 for v in values if v is not None and not math.isnan(v)],
                           dtype=float)
        if shown.size == 0:
            return cls(None, (), (), decimals)
        unique = np.unique(shown)
        upper = [float(unique[-1])]
        if unique.size > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mapclassify warns when ties leave fewer distinct quantiles
                bins = mapclassify.Quantiles(shown, k=min(count, int(unique.size))).bins
            upper = sorted({round(float(b), decimals) for b in bins} | {float(unique[-1])})
            # merge every empty class into the next one (its upper bound goes)
            counts = np.bincount(np.searchsorted(np.asarray(upper), shown, side="left"), minlength=len(upper))
            upper = [b for b, n in zip(upper, counts, strict=True) if n > 0]
        cmap = matplotlib.colormaps["Blues" if direction == "neutral" else "YlOrRd"]
        colours = [to_hex(cmap(0.12 + 0.8 * i / max(len(upper) - 1, 1))) for i in range(len(upper))]
        if direction == "higher_is_better":
            colours = colours[::-1]
        return cls(float(unique[0]), tuple(upper), tuple(colours), decimals)

    def index(self, value: float) -> int:
        """The class of ``value`` (rounded as shown); a value beyond the bounds falls in the nearest class."""
        position = int(np.searchsorted(np.asarray(self.upper), round(value, self.decimals), side="left"))
        return min(position, len(self.upper) - 1)

    def colour(self, value: float) -> str:
        return self.colours[self.index(value)] if self.upper else MISSING_FILL

    def labels(self) -> list[str]:
        """One label per class: "2,1 bis 4,5", then "über 4,5 bis 7,0", ... (one class: its only value)."""
        if not self.upper:
            return []
        if len(self.upper) == 1 and self.lowest == self.upper[0]:
            return [german_number(self.lowest, self.decimals)]
        out = [f"{german_number(self.lowest, self.decimals)} bis {german_number(self.upper[0], self.decimals)}"]
        out += [f"über {german_number(low, self.decimals)} bis {german_number(high, self.decimals)}"
                for low, high in zip(self.upper, self.upper[1:], strict=False)]
        return out

    def legend(self, values: list[float]) -> list[tuple[str, str, int]]:
        """(colour, label, areas) of each class that ``values`` (one cycle's) fall in, in class order."""
        counts = [0] * len(self.upper)
        for value in values:
            counts[self.index(value)] += 1
        return [(c, label, n) for c, label, n in zip(self.colours, self.labels(), counts, strict=True) if n]


@dataclass(frozen=True)
class Symbols:
    """Proportional circles of a count: the circle's area is proportional to the value, on one scale for every
    report cycle (the largest value of every cycle gets SYMBOL_MAX_RADIUS)."""

    largest: float

    def radius(self, value: float) -> float:
        if self.largest <= 0 or value <= 0:
            return 0.0
        return SYMBOL_MAX_RADIUS * math.sqrt(value / self.largest)

    def legend(self) -> list[tuple[float, str]]:
        """Reference circles (radius, value text): round values of about the largest, a quarter and a 16th."""
        if self.largest <= 0:
            return []
        values = sorted({round_length(self.largest / share) for share in (1, 4, 16)}, reverse=True)
        return [(self.radius(v), german_number(v, 0)) for v in values if v >= 1]
