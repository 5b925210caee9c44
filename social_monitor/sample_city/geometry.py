"""Area geometry: a city's boundaries, read from its city folder, and synthetic ones for a sample city.

A city's boundaries are a file of its city folder, ``geography/boundaries.geojson`` (or any GeoJSON or
shapefile named by ``$SOCIAL_MONITOR_GEOMETRY``): :func:`load_geometry` reads it with the area code in a
configurable property and returns polygons per level of the city's geography (``geography/levels.yml``);
when only the areas of the base level are given, the higher levels are dissolved from them through the
geography. Where the geography has versions (areas with a validity), the file holds one version of each
level, found from its keys.

A sample city has no real boundaries, so :func:`generate_geometry` draws plausible ones from the recipe
``geography/synthetic_boundaries.yml``: an outline (a wobbly ellipse of the given radii), cut into the areas
of the recipe's first level around their seed points (given in the recipe, or spread on a disc), each area
cut into its areas of the next level, down to the base level; every cut a Voronoi tessellation of relaxed
seed points clipped to the parent. The levels nest by construction; every level is then dissolved from the
base areas so that neighbours share every vertex. The base areas drawn are those valid in the given report
cycle (the city's latest: the current version). The result is deterministic for a seed and is marked
``"synthetic": true`` everywhere: it is not the real map. ``social-monitor boundaries`` writes it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import yaml
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape

from social_monitor.geography import CITY_LEVEL, Geography, geography_dir, load_geography

BOUNDARIES_FILE = "boundaries.geojson"
RECIPE_FILE = "synthetic_boundaries.yml"
GEOMETRY_ENV = "SOCIAL_MONITOR_GEOMETRY"
CODE_PROPERTY_ENV = "SOCIAL_MONITOR_GEOMETRY_CODE_PROPERTY"
CITY_FEATURE_NAME = "Stadt"
METRES_PER_DEGREE_LAT = 110_540.0
GRID_DEGREES = 1e-5  # 5 decimals: about one metre
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def boundaries_path(city_dir: Path) -> Path:
    """The city folder's boundaries (real, or the sample city's synthetic ones)."""
    return geography_dir(city_dir) / BOUNDARIES_FILE


def default_geometry(city_dir: Path, env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The geometry file and its area-code property: $SOCIAL_MONITOR_GEOMETRY or the city folder's."""
    env = os.environ if env is None else env
    return (Path(env.get(GEOMETRY_ENV) or boundaries_path(city_dir)), env.get(CODE_PROPERTY_ENV) or "area_id")


class GeometryError(ValueError):
    """A geometry file (or a recipe) that does not fit the city's geography."""


@dataclass(frozen=True)
class Recipe:
    """How the synthetic boundaries of a sample city are drawn (``geography/synthetic_boundaries.yml``)."""

    path: Path
    seed: int
    centre_lon: float
    centre_lat: float
    radius_east_m: float
    radius_north_m: float
    levels: tuple[str, ...]  # the cuts, from the top level down to the base level
    seeds_km: Mapping[str, tuple[float, float]]  # top-level area -> (km east, km north of the centre)
    description_de: str

    @classmethod
    def read(cls, city_dir: Path, geography: Geography) -> Recipe:
        path = geography_dir(city_dir) / RECIPE_FILE
        if not path.is_file():
            raise GeometryError(f"{path}: missing (the recipe of the synthetic boundaries; a city with real "
                                f"boundaries puts them in {BOUNDARIES_FILE} instead)")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {"seed", "centre", "radius_m", "levels", "seeds_km", "description_de"}
        if not isinstance(raw, dict) or (unknown := sorted(set(raw) - known)):
            raise GeometryError(f"{path}: unknown key {unknown[0] if isinstance(raw, dict) else ''!r} "
                                f"(known: {', '.join(sorted(known))})")
        try:
            centre, radius = raw["centre"], raw["radius_m"]
            recipe = cls(
                path=path, seed=int(raw.get("seed", 0)), centre_lon=float(centre["lon"]),
                centre_lat=float(centre["lat"]), radius_east_m=float(radius["east"]),
                radius_north_m=float(radius["north"]),
                levels=tuple(raw.get("levels") or _parent_chain(geography)),
                seeds_km={str(k): (float(v[0]), float(v[1])) for k, v in (raw.get("seeds_km") or {}).items()},
                description_de=str(raw.get("description_de") or "Synthetische Gebietsgrenzen der Beispielstadt "
                                   "(nicht die realen Grenzen)."))
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise GeometryError(f"{path}: needs centre (lon, lat) and radius_m (east, north) as numbers; "
                                f"seeds_km as [km east, km north] ({error})") from None
        ids = [level.id for level in geography.levels]
        for level in recipe.levels:
            if level not in ids:
                raise GeometryError(f"{path}: levels: {level!r} is not a level of the geography ({', '.join(ids)})")
        if not recipe.levels or recipe.levels[-1] != geography.base.id:
            raise GeometryError(f"{path}: levels must end with the base level {geography.base.id}")
        return recipe


def _parent_chain(geography: Geography) -> list[str]:
    """The levels from the top down to the base level along the parents."""
    chain, level = [], geography.base
    while True:
        chain.append(level.id)
        if level.parent in (None, CITY_LEVEL):
            return chain[::-1]
        level = geography.level(level.parent)


# --- the synthetic geometry ------------------------------------------------------------------------------

def _outline(rng: np.random.Generator, radius_east: float, radius_north: float) -> Polygon:
    """A wobbly ellipse with these radii (metres), star-shaped around the centre."""
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    phases = rng.uniform(0, 2 * np.pi, 4)
    wobble = (1 + 0.07 * np.sin(2 * angles + phases[0]) + 0.05 * np.sin(3 * angles + phases[1])
              + 0.03 * np.sin(5 * angles + phases[2]) + 0.015 * np.sin(9 * angles + phases[3]))
    xs = radius_east * np.cos(angles) * wobble
    ys = radius_north * np.sin(angles) * wobble
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


def _to_degrees(geometry, recipe: Recipe):
    metres_per_degree_lon = 111_320.0 * math.cos(math.radians(recipe.centre_lat))
    return shapely.transform(geometry, lambda xy: np.column_stack(
        [recipe.centre_lon + xy[:, 0] / metres_per_degree_lon, recipe.centre_lat + xy[:, 1] / METRES_PER_DEGREE_LAT]))


def _top_points(recipe: Recipe, areas: Sequence[str]) -> np.ndarray:
    """The seed point (metres) of each top-level area: the recipe's, or spread on a disc (golden angle)."""
    if recipe.seeds_km:
        missing = [a for a in areas if a not in recipe.seeds_km]
        if missing:
            raise GeometryError(f"{recipe.path}: seeds_km has no position for {recipe.levels[0]} {missing[0]} "
                                "(give every one or none)")
        return np.array([[x * 1000, y * 1000] for x, y in (recipe.seeds_km[a] for a in areas)])
    i = np.arange(len(areas))
    radius = 0.7 * np.sqrt((i + 0.5) / len(areas))
    return np.column_stack([radius * recipe.radius_east_m * np.cos(i * GOLDEN_ANGLE),
                            radius * recipe.radius_north_m * np.sin(i * GOLDEN_ANGLE)])


def _membership(geography: Geography, cycle: int) -> dict[tuple[str, str], str]:
    """(base area, level) -> the area of that level it lies in, for the base areas valid in ``cycle``."""
    return {(base, level): area for base, level, area in geography.memberships(cycle)}


def generate_geometry(geography: Geography, recipe: Recipe, cycle: int) -> dict[tuple[str, str], object]:
    """(level, area_id) -> polygon in WGS84 degrees for every area valid in ``cycle`` of every level (plus
    ``("city", "city")``)."""
    rng = np.random.default_rng(recipe.seed)
    outline = _outline(rng, recipe.radius_east_m, recipe.radius_north_m)
    member = _membership(geography, cycle)
    base_cells: dict[str, object] = {}

    def cut(cell, base_ids: list[str], depth: int) -> None:
        level = recipe.levels[depth]
        children = sorted({member[(b, level)] for b in base_ids})
        points = _top_points(recipe, children) if depth == 0 else None
        for child, part in zip(children, _split(rng, cell, len(children), points=points), strict=True):
            if depth == len(recipe.levels) - 1:
                base_cells[child] = part
            else:
                cut(part, [b for b in base_ids if member[(b, level)] == child], depth + 1)

    cut(outline, sorted(geography.base_keys(cycle)), 0)
    # snap to a one-metre grid in degrees so that neighbours share identical vertices
    base_cells = {k: shapely.set_precision(_to_degrees(v, recipe), GRID_DEGREES) for k, v in base_cells.items()}
    return dissolve(base_cells, geography, cycle)


def dissolve(base_shapes: Mapping[str, object], geography: Geography, cycle: int,
             grid_size: float | None = GRID_DEGREES) -> dict[tuple[str, str], object]:
    """Every level of the areas valid in ``cycle`` from the polygons of the base areas."""
    base = geography.base.id
    result: dict[tuple[str, str], object] = {(base, k): v for k, v in base_shapes.items()}
    groups: dict[tuple[str, str], list] = {}
    for base_id, level, area_id in geography.memberships(cycle):
        if level != base and base_id in base_shapes:
            groups.setdefault((level, area_id), []).append(base_shapes[base_id])
    for key, parts in groups.items():
        result[key] = shapely.union_all(parts, grid_size=grid_size)
    return result


def is_contiguous(geometry) -> bool:
    return isinstance(geometry, Polygon) or (isinstance(geometry, MultiPolygon) and len(geometry.geoms) == 1)


def level_order(geography: Geography, recipe: Recipe | None = None) -> list[str]:
    """The city, the recipe's levels from the top, then the other levels as declared."""
    first = list(recipe.levels) if recipe else []
    return [CITY_LEVEL, *first, *(level.id for level in geography.levels if level.id not in first)]


def write_geojson(geometries: Mapping[tuple[str, str], object], geography: Geography, path: Path, cycle: int,
                  recipe: Recipe, synthetic: bool = True) -> None:
    order = {level: i for i, level in enumerate(level_order(geography, recipe))}
    names = {(CITY_LEVEL, CITY_LEVEL): CITY_FEATURE_NAME}
    for area in sorted(geography.areas, key=lambda a: not a.valid_in(cycle)):  # the version drawn first
        names.setdefault((area.level, area.area_id), area.area_name)
    features = []
    for (level, area_id), geometry in sorted(geometries.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        features.append({"type": "Feature",
                         "properties": {"area_level": level, "area_id": area_id,
                                        "name": names.get((level, area_id), area_id),
                                        "synthetic": synthetic},
                         "geometry": mapping(geometry)})
    collection = {
        "type": "FeatureCollection",
        "name": "social_monitor_sample_city",
        "metadata": {"synthetic": synthetic, "seed": recipe.seed, "description": recipe.description_de,
                     "levels": list(order), "crs": "EPSG:4326"},
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


def versions(geography: Geography, level_id: str) -> list[tuple[int, set[str]]]:
    """(a report cycle, the keys of ``level_id`` valid in it) for each version of the level, oldest first."""
    areas = geography.areas_of(level_id)
    edges = sorted({a.valid_from for a in areas if a.valid_from is not None}
                   | {a.valid_to + 1 for a in areas if a.valid_to is not None})
    probes = [edges[0] - 1, *edges] if edges else [0]
    return [(cycle, {a.area_id for a in geography.areas_of(level_id, cycle)}) for cycle in probes]


def _code(value: object, known: Iterable[str]) -> str:
    """A key as text; a number (a shapefile's numeric field) is matched to the key without its leading zeros."""
    if isinstance(value, int) and not isinstance(value, bool):
        return next((k for k in known if k.isdigit() and int(k) == value), str(value))
    return str(value).strip()


def load_geometry(path: Path, geography: Geography, area_code_property: str = "area_id",
                  level_property: str | None = "area_level", default_level: str | None = None,
                  required_levels: Iterable[str] = ()) -> AreaGeometry:
    """Read boundaries keyed by ``area_code_property``; levels from ``level_property`` when the file has it,
    otherwise every feature is on ``default_level`` (default: the base level). The areas of the base level
    alone are dissolved to every higher level; without them, every level of ``required_levels`` must be
    given. Each level given must hold exactly the areas of one version of that level."""
    path = Path(path)
    features, synthetic = _read_features(path)
    if not features:
        raise GeometryError(f"{path}: no features")
    base = geography.base
    default_level = default_level or base.id
    known_levels = [CITY_LEVEL, *(level.id for level in geography.levels)]
    keys = {level: {a.area_id for a in geography.areas_of(level)} for level in known_levels[1:]}
    shapes: dict[tuple[str, str], object] = {}
    for properties, geometry in features:
        if area_code_property not in properties:
            raise GeometryError(f"{path}: feature without the area-code property '{area_code_property}' "
                                f"(properties: {', '.join(sorted(properties)) or 'none'})")
        level = str(properties.get(level_property, default_level)) if level_property else default_level
        if level not in known_levels:
            raise GeometryError(f"{path}: unknown area level '{level}' (expected one of {', '.join(known_levels)})")
        code = _code(properties[area_code_property], keys.get(level, ()))
        if (level, code) in shapes:
            raise GeometryError(f"{path}: area {level} {code} has more than one feature")
        shapes[(level, code)] = shapely.make_valid(geometry)
    synthetic = synthetic or any(bool(p.get("synthetic")) for p, _ in features)
    given_levels = {level for level, _ in shapes}
    matched: dict[str, int] = {}
    for level in sorted(given_levels - {CITY_LEVEL}):
        given = {code for lv, code in shapes if lv == level}
        candidates = versions(geography, level)
        cycles = [cycle for cycle, ids in candidates if ids == given]
        if cycles:
            matched[level] = cycles[-1]
            continue
        _, expected = min(reversed(candidates), key=lambda c: len(c[1] ^ given))
        missing, unknown = sorted(expected - given), sorted(given - expected)
        parts = [f"missing {level} codes: {', '.join(missing)}" if missing else "",
                 f"unknown {level} codes: {', '.join(unknown)}" if unknown else ""]
        raise GeometryError(f"{path}: the geometry does not match the geography ({geography.directory}); "
                            + "; ".join(p for p in parts if p) + f" (area-code property '{area_code_property}')")
    if base.id in given_levels:
        dissolved = dissolve({c: g for (lv, c), g in shapes.items() if lv == base.id}, geography,
                             matched[base.id], grid_size=None)
        for key, geometry in dissolved.items():
            shapes.setdefault(key, geometry)
    elif absent := [level for level in required_levels if level not in given_levels]:
        raise GeometryError(f"{path}: give the {base.plural_de} (the other levels are dissolved from them) or "
                            f"every level the report maps; missing: "
                            f"{', '.join(geography.level(level).plural_de for level in absent)}")
    return AreaGeometry(shapes, synthetic, path)


# --- the command ------------------------------------------------------------------------------------------

DESCRIPTION = (
    "Write the city's synthetic boundaries (geography/boundaries.geojson in the city folder) from the recipe "
    "geography/synthetic_boundaries.yml: the base areas valid in the city's latest report cycle, every level "
    "dissolved from them. Deterministic: the same recipe gives a byte-identical file. Only for a sample city: "
    "a real city puts its real boundaries there instead."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--city", default=None,
                        help="city folder: a name in config/ or a path (default: $SOCIAL_MONITOR_CITY or dortmund)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output file (default: the city folder's geography/{BOUNDARIES_FILE})")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the recipe's)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from social_monitor.settings import CITY_FILE, CityConfig, city_dir, load_settings

    folder = city_dir(args.city) if args.city else load_settings().city_dir
    geography = load_geography(folder)
    recipe = Recipe.read(folder, geography)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    cycle = max(CityConfig.from_file(folder / CITY_FILE).report_cycles)
    out = args.out or boundaries_path(folder)
    geometries = generate_geometry(geography, recipe, cycle)
    broken = [k for k, g in geometries.items() if k[0] != geography.base.id and not is_contiguous(g)]
    write_geojson(geometries, geography, out, cycle, recipe)
    print(f"{out}: {len(geometries)} areas (valid in report cycle {cycle}), {out.stat().st_size:,} bytes; "
          f"not contiguous: {', '.join(f'{lv} {i}' for lv, i in broken) or 'none'}")
    return 0
