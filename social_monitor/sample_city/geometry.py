"""Area geometry: the sample city's synthetic boundaries, and a loader for a city's real ones.

The sample city has no real boundaries, so :func:`generate_geometry` draws plausible ones: a city outline
shaped roughly like Dortmund (about 21 km east–west, 15 km north–south), cut into the 12 Stadtbezirke
around seed points placed where Dortmund's Stadtbezirke lie, each Stadtbezirk cut into its Sozialräume,
each Sozialraum into its statistische Bezirke (one part per Bezirk; Bezirk 12 is split between two
Sozialräume), and each part into its Unterbezirke — every cut a Voronoi tessellation of relaxed seed
points clipped to the parent. The levels nest by construction; the higher levels are then dissolved from
the Unterbezirke so that they share every vertex. The result is deterministic for a seed and is marked
``"synthetic": true`` everywhere: it is not the real map.

:func:`load_geometry` reads a user's GeoJSON or shapefile (pyshp) with the area code in a configurable
property and returns polygons per level; when only Unterbezirke are given, the higher levels are dissolved
from them through the reference geography.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape

from social_monitor.sample_city.reference import read_reference

SAMPLE_GEOMETRY = Path(__file__).with_name("geometry.geojson")
GEOMETRY_ENV = "SOCIAL_MONITOR_GEOMETRY"
CODE_PROPERTY_ENV = "SOCIAL_MONITOR_GEOMETRY_CODE_PROPERTY"


def default_geometry() -> tuple[Path, str]:
    """The geometry file and its area-code property: $SOCIAL_MONITOR_GEOMETRY or the sample city's."""
    return (Path(os.environ.get(GEOMETRY_ENV) or SAMPLE_GEOMETRY),
            os.environ.get(CODE_PROPERTY_ENV) or "area_id")
LEVELS = ("city", "stadtbezirk", "sozialraum", "statistischer_bezirk", "unterbezirk")
DEFAULT_SEED = 3  # chosen so that every Bezirk and Sozialraum is one contiguous polygon
CENTRE_LON, CENTRE_LAT = 7.465, 51.514  # Dortmund's Alter Markt: only to give the file real coordinates
METRES_PER_DEGREE_LAT = 110_540.0
METRES_PER_DEGREE_LON = 111_320.0 * math.cos(math.radians(CENTRE_LAT))
GRID_DEGREES = 1e-5  # 5 decimals: about one metre

# approximate position (km east, km north of the centre) of each Stadtbezirk, as in Dortmund
STADTBEZIRK_SEEDS = {
    "01": (-1.6, -0.2), "02": (0.2, 1.9), "03": (1.7, -0.6), "04": (0.6, 5.0), "05": (5.2, 4.2),
    "06": (6.6, 0.2), "07": (7.2, -4.0), "08": (2.6, -5.2), "09": (-3.0, -5.2), "10": (-8.0, -1.2),
    "11": (-4.6, 2.2), "12": (-6.0, 6.0),
}


@dataclass
class Reference:
    """The reference geography (seeds): names and the membership of every Unterbezirk."""

    unterbezirke: pl.DataFrame
    bezirke: pl.DataFrame
    sozialraeume: pl.DataFrame
    stadtbezirke: pl.DataFrame
    names: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_seeds(cls, folder: Path | None = None) -> Reference:
        """From the sample city's geography (``folder``: a copy of its city folder; default config/dortmund)."""
        def read(name: str) -> pl.DataFrame:
            return pl.DataFrame(list(read_reference(name, folder)), infer_schema_length=None)

        ub, bz, sr, sb = (read(n) for n in ("unterbezirke", "statistische_bezirke", "sozialraeume", "stadtbezirke"))
        ub = ub.join(bz.select("bezirk_id", "stadtbezirk_id"), on="bezirk_id")
        names = {("city", "city"): "Stadt"}
        for level, frame, id_col, name_col in (
                ("unterbezirk", ub, "unterbezirk_id", "unterbezirk_name"),
                ("statistischer_bezirk", bz, "bezirk_id", "bezirk_name"),
                ("sozialraum", sr, "sozialraum_id", "sozialraum_name"),
                ("stadtbezirk", sb, "stadtbezirk_id", "stadtbezirk_name")):
            names.update({(level, i): n for i, n in frame.select(id_col, name_col).iter_rows()})
        return cls(ub, bz, sr, sb, names)

    def parent_ids(self, level: str) -> dict[str, str]:
        """Unterbezirk id -> the id of its area on ``level``."""
        column = {"unterbezirk": "unterbezirk_id", "statistischer_bezirk": "bezirk_id",
                  "sozialraum": "sozialraum_id", "stadtbezirk": "stadtbezirk_id"}
        if level == "city":
            return {u: "city" for u in self.unterbezirke["unterbezirk_id"]}
        if level == "unterbezirk":
            return {u: u for u in self.unterbezirke["unterbezirk_id"]}
        return dict(self.unterbezirke.select("unterbezirk_id", column[level]).iter_rows())

    def ids(self, level: str) -> set[str]:
        return set(self.parent_ids(level).values())


class GeometryError(ValueError):
    """A geometry file that does not fit the reference geography."""


# --- the synthetic geometry ------------------------------------------------------------------------------

def _outline(rng: np.random.Generator) -> Polygon:
    """A wobbly ellipse of about 21 x 15 km (metres), star-shaped around the centre."""
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    phases = rng.uniform(0, 2 * np.pi, 4)
    wobble = (1 + 0.07 * np.sin(2 * angles + phases[0]) + 0.05 * np.sin(3 * angles + phases[1])
              + 0.03 * np.sin(5 * angles + phases[2]) + 0.015 * np.sin(9 * angles + phases[3]))
    xs = 10_500 * np.cos(angles) * wobble
    ys = 7_600 * np.sin(angles) * wobble
    return Polygon(np.column_stack([xs, ys]))


def _random_points(rng: np.random.Generator, polygon: Polygon, count: int) -> np.ndarray:
    minx, miny, maxx, maxy = polygon.bounds
    points: list[tuple[float, float]] = []
    while len(points) < count:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(Point(x, y)):
            points.append((x, y))
    return np.array(points)


def _voronoi(polygon: Polygon, points: np.ndarray) -> list[Polygon]:
    """Cells of ``points`` clipped to ``polygon``, in the order of the points."""
    if len(points) == 1:
        return [polygon]
    cells = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=polygon.buffer(1000))
    by_point: list[Polygon | None] = [None] * len(points)
    for cell in cells.geoms:
        for i, p in enumerate(points):
            if by_point[i] is None and cell.contains(Point(p)):
                by_point[i] = cell.intersection(polygon)
                break
    return [c if c is not None else Polygon() for c in by_point]


def _split(rng: np.random.Generator, polygon: Polygon, count: int, relax: int = 6,
           points: np.ndarray | None = None) -> list[Polygon]:
    """Cut ``polygon`` into ``count`` cells (Lloyd-relaxed Voronoi unless ``points`` are given)."""
    if count == 1:
        return [polygon]
    if points is not None:
        return _voronoi(polygon, points)
    points = _random_points(rng, polygon, count)
    for _ in range(relax):
        cells = _voronoi(polygon, points)
        points = np.array([[c.centroid.x, c.centroid.y] if not c.is_empty else p
                           for c, p in zip(cells, points, strict=True)])
    return _voronoi(polygon, points)


def _to_degrees(geometry):
    return shapely.transform(geometry, lambda xy: np.column_stack(
        [CENTRE_LON + xy[:, 0] / METRES_PER_DEGREE_LON, CENTRE_LAT + xy[:, 1] / METRES_PER_DEGREE_LAT]))


def generate_geometry(seed: int = DEFAULT_SEED, reference: Reference | None = None) -> dict[tuple[str, str], object]:
    """(level, area_id) -> polygon in WGS84 degrees for every area of every level (plus ``("city", "city")``)."""
    ref = reference or Reference.from_seeds()
    rng = np.random.default_rng(seed)
    outline = _outline(rng)
    ub = ref.unterbezirke.sort("unterbezirk_id")
    stadtbezirke = sorted(ub["stadtbezirk_id"].unique())
    seeds = np.array([[x * 1000, y * 1000] for x, y in (STADTBEZIRK_SEEDS[s] for s in stadtbezirke)])
    unterbezirk_cells: dict[str, object] = {}
    for sb_id, sb_cell in zip(stadtbezirke, _split(rng, outline, len(stadtbezirke), points=seeds), strict=True):
        in_sb = ub.filter(pl.col("stadtbezirk_id") == sb_id)
        sozialraeume = sorted(in_sb["sozialraum_id"].unique())
        for sr_id, sr_cell in zip(sozialraeume, _split(rng, sb_cell, len(sozialraeume)), strict=True):
            in_sr = in_sb.filter(pl.col("sozialraum_id") == sr_id)
            bezirke = sorted(in_sr["bezirk_id"].unique())
            for bz_id, part in zip(bezirke, _split(rng, sr_cell, len(bezirke)), strict=True):
                ids = sorted(in_sr.filter(pl.col("bezirk_id") == bz_id)["unterbezirk_id"])
                for ub_id, cell in zip(ids, _split(rng, part, len(ids)), strict=True):
                    unterbezirk_cells[ub_id] = cell
    # snap to a one-metre grid in degrees so that neighbours share identical vertices
    unterbezirk_cells = {k: shapely.set_precision(_to_degrees(v), GRID_DEGREES) for k, v in unterbezirk_cells.items()}
    return dissolve(unterbezirk_cells, ref)


def dissolve(unterbezirke: dict[str, object], reference: Reference,
             grid_size: float | None = GRID_DEGREES) -> dict[tuple[str, str], object]:
    """All levels from Unterbezirk polygons, through the reference membership."""
    result: dict[tuple[str, str], object] = {("unterbezirk", k): v for k, v in unterbezirke.items()}
    for level in ("statistischer_bezirk", "sozialraum", "stadtbezirk", "city"):
        groups: dict[str, list] = {}
        for ub_id, parent in reference.parent_ids(level).items():
            if ub_id in unterbezirke:
                groups.setdefault(parent, []).append(unterbezirke[ub_id])
        for parent, parts in groups.items():
            result[(level, parent)] = shapely.union_all(parts, grid_size=grid_size)
    return result


def is_contiguous(geometry) -> bool:
    return isinstance(geometry, Polygon) or (isinstance(geometry, MultiPolygon) and len(geometry.geoms) == 1)


def write_geojson(geometries: dict[tuple[str, str], object], reference: Reference, path: Path,
                  synthetic: bool = True, seed: int | None = None) -> None:
    order = {level: i for i, level in enumerate(LEVELS)}
    features = []
    for (level, area_id), geometry in sorted(geometries.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        features.append({"type": "Feature",
                         "properties": {"area_level": level, "area_id": area_id,
                                        "name": reference.names.get((level, area_id), area_id),
                                        "synthetic": synthetic},
                         "geometry": mapping(geometry)})
    collection = {
        "type": "FeatureCollection",
        "name": "social_monitor_sample_city",
        "metadata": {"synthetic": synthetic, "seed": seed,
                     "description": "Synthetische Gebietsgrenzen der Beispielstadt (nicht die realen Grenzen "
                                    "Dortmunds), erzeugt von social_monitor.sample_city.geometry.",
                     "levels": list(LEVELS), "crs": "EPSG:4326"},
        "features": features,
    }
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


# --- reading a city's geometry ---------------------------------------------------------------------------

@dataclass
class AreaGeometry:
    """Polygons per (level, area_id), whether they are synthetic, and where they came from."""

    shapes: dict[tuple[str, str], object]
    synthetic: bool
    source: Path

    def level(self, level: str) -> dict[str, object]:
        return {k[1]: v for k, v in self.shapes.items() if k[0] == level}


def _read_features(path: Path) -> tuple[list[tuple[dict, object]], bool]:
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise GeometryError(f"{path}: not a readable GeoJSON file ({error})") from error
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, list):
            raise GeometryError(f"{path}: not a GeoJSON FeatureCollection (no 'features' list)")
        synthetic = bool((data.get("metadata") or {}).get("synthetic", False))
        return [(f.get("properties") or {}, shape(f["geometry"])) for f in features if f.get("geometry")], synthetic
    if suffix == ".shp":
        import shapefile  # pyshp

        try:
            reader = shapefile.Reader(str(path))
        except Exception as error:  # pyshp raises its own ShapefileException and OSError
            raise GeometryError(f"{path}: not a readable shapefile ({error})") from error
        with reader:
            features = [(rec.record.as_dict(), shape(rec.shape.__geo_interface__)) for rec in reader.iterShapeRecords()]
            return features, False
    raise GeometryError(f"{path}: unknown geometry format (expected .geojson, .json or .shp)")


def load_geometry(path: Path, area_code_property: str = "area_id", level_property: str | None = "area_level",
                  default_level: str = "unterbezirk", reference: Reference | None = None) -> AreaGeometry:
    """Read boundaries keyed by ``area_code_property``; levels from ``level_property`` when the file has it,
    otherwise every feature is on ``default_level``. Unterbezirke alone are dissolved to the higher levels.
    Every area of the reference must have exactly one geometry on each level given."""
    ref = reference or Reference.from_seeds()
    path = Path(path)
    features, synthetic = _read_features(path)
    if not features:
        raise GeometryError(f"{path}: no features")
    shapes: dict[tuple[str, str], object] = {}
    for properties, geometry in features:
        if area_code_property not in properties:
            raise GeometryError(f"{path}: feature without the area-code property '{area_code_property}' "
                                f"(properties: {', '.join(sorted(properties)) or 'none'})")
        level = str(properties.get(level_property, default_level)) if level_property else default_level
        if level not in LEVELS:
            raise GeometryError(f"{path}: unknown area level '{level}' (expected one of {', '.join(LEVELS)})")
        code = properties[area_code_property]
        code = f"{code:03d}" if isinstance(code, int) and level == "unterbezirk" else str(code).strip()
        if (level, code) in shapes:
            raise GeometryError(f"{path}: area {level} {code} has more than one feature")
        shapes[(level, code)] = shapely.make_valid(geometry)
    synthetic = synthetic or any(bool(p.get("synthetic")) for p, _ in features)
    levels = {level for level, _ in shapes}
    for level in levels - {"city"}:
        given = {code for lv, code in shapes if lv == level}
        expected = ref.ids(level)
        missing, unknown = sorted(expected - given), sorted(given - expected)
        if missing or unknown:
            parts = [f"missing {level} codes: {', '.join(missing)}" if missing else "",
                     f"unknown {level} codes: {', '.join(unknown)}" if unknown else ""]
            raise GeometryError(f"{path}: the geometry does not match the reference geography; "
                                + "; ".join(p for p in parts if p)
                                + f" (area-code property '{area_code_property}')")
    if "unterbezirk" in levels:
        dissolved = dissolve({c: g for (lv, c), g in shapes.items() if lv == "unterbezirk"}, ref, grid_size=None)
        for key, geometry in dissolved.items():
            shapes.setdefault(key, geometry)
    elif not {"sozialraum", "statistischer_bezirk"} <= levels:
        raise GeometryError(f"{path}: give Unterbezirke (the other levels are dissolved from them) or both "
                            "Sozialräume and statistische Bezirke")
    return AreaGeometry(shapes, synthetic, path)


def load_sample_geometry() -> AreaGeometry:
    return load_geometry(SAMPLE_GEOMETRY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the sample city's synthetic geometry (GeoJSON).")
    parser.add_argument("--out", type=Path, default=SAMPLE_GEOMETRY)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    ref = Reference.from_seeds()
    geometries = generate_geometry(args.seed, ref)
    broken = [k for k, g in geometries.items() if k[0] != "unterbezirk" and not is_contiguous(g)]
    write_geojson(geometries, ref, args.out, seed=args.seed)
    print(f"{args.out}: {len(geometries)} areas, {args.out.stat().st_size:,} bytes; "
          f"not contiguous: {', '.join(f'{lv} {i}' for lv, i in broken) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
