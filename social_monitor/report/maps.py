"""Choropleth maps as inline SVG: one ``<path>`` per area, drawn from shapely geometry.

Coordinates in degrees (GeoJSON) are projected with the cosine of the mean latitude; projected coordinates
(metres, a shapefile in ETRS89/UTM, say) are drawn as they are. Suppressed values get the hatch pattern
``#gesperrt`` that :data:`SVG_DEFS` defines once per page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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

    @classmethod
    def fit(cls, geometries: list[BaseGeometry], width: int) -> Projection:
        bounds = np.array([g.bounds for g in geometries if not g.is_empty])
        minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
        maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
        degrees = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
        aspect = math.cos(math.radians((miny + maxy) / 2)) if degrees else 1.0
        scale = (width - 4) / ((maxx - minx) * aspect)
        height = int(math.ceil((maxy - miny) * scale)) + 4
        return cls(minx, maxy, scale * aspect, scale, width, height)

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


class MapCanvas:
    """The path data of every area of one level, computed once and reused by every map of that level."""

    def __init__(self, shapes: Mapping[str, BaseGeometry], width: int = 560, outline: BaseGeometry | None = None):
        self.projection = Projection.fit(list(shapes.values()), width)
        self.paths = {area_id: self.projection.path_data(g) for area_id, g in sorted(shapes.items())}
        self.outline = self.projection.path_data(outline) if outline is not None else None

    def svg(self, fill: Callable[[str], str], title: Callable[[str], str], label: str, css_class: str = "map",
            highlight: str | None = None) -> str:
        p = self.projection
        out = [f'<svg class="{css_class}" role="img" aria-label="{html.escape(label)}" '
               f'viewBox="0 0 {p.width} {p.height}" width="{p.width}" height="{p.height}" '
               f'xmlns="http://www.w3.org/2000/svg">']
        for area_id, data in self.paths.items():
            stroke = ' stroke="#000" stroke-width="2.5"' if area_id == highlight else ""
            out.append(f'<path data-area-id="{html.escape(area_id)}" d="{data}" fill="{fill(area_id)}"{stroke}>'
                       f"<title>{html.escape(title(area_id))}</title></path>")
        if highlight is not None and highlight in self.paths:  # draw the highlighted border on top
            out.append(f'<path class="highlight" d="{self.paths[highlight]}" fill="none" stroke="#000" '
                       'stroke-width="2.5"/>')
        out.append("</svg>")
        return "".join(out)


@dataclass
class Classes:
    """Quantile classes of a map: the breaks, a colour per class, and the legend."""

    breaks: list[float]
    colours: list[str]
    decimals: int

    @classmethod
    def quantiles(cls, values: list[float], direction: str, count: int = 5, decimals: int = 1) -> Classes:
        values = sorted(v for v in values if v is not None)
        if not values:
            return cls([], [], decimals)
        breaks = sorted(set(float(np.quantile(values, q)) for q in np.linspace(0, 1, count + 1)))
        classes = max(len(breaks) - 1, 1)
        cmap = matplotlib.colormaps["Blues" if direction == "neutral" else "YlOrRd"]
        colours = [to_hex(cmap(0.12 + 0.8 * i / max(classes - 1, 1))) for i in range(classes)]
        if direction == "higher_is_better":
            colours = colours[::-1]
        return cls(breaks, colours, decimals)

    def colour(self, value: float) -> str:
        if len(self.breaks) < 2:
            return self.colours[0] if self.colours else MISSING_FILL
        for i in range(len(self.breaks) - 1):
            if value <= self.breaks[i + 1]:
                return self.colours[i]
        return self.colours[-1]

    def legend(self) -> list[tuple[str, str]]:
        if len(self.breaks) < 2:
            return [(c, german_number(self.breaks[0], self.decimals)) for c in self.colours[:1]]
        return [(self.colours[i], f"{german_number(self.breaks[i], self.decimals)} bis "
                                  f"{german_number(self.breaks[i + 1], self.decimals)}")
                for i in range(len(self.breaks) - 1)]
