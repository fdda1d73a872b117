"""Validation of uploaded boundaries: a GeoJSON FeatureCollection of Polygon / MultiPolygon
features, each naming the unit it outlines (`properties.unit_id`)."""

from __future__ import annotations

from typing import Any

MAX_FEATURES = 20_000
MAX_POINTS = 2_000_000


class InvalidBoundaries(ValueError):
    pass


def _rings(geometry: dict[str, Any]) -> list[list[Any]]:
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if not isinstance(coords, list):
        raise InvalidBoundaries("geometry without coordinates")
    if kind == "Polygon":
        return coords
    if kind == "MultiPolygon":
        return [ring for polygon in coords if isinstance(polygon, list) for ring in polygon]
    raise InvalidBoundaries(f"geometry type {kind!r}: only Polygon and MultiPolygon")


def validate(doc: Any) -> dict[str, Any]:
    """The collection reduced to what the map needs (unit id, name, geometry), or an error
    saying what is wrong."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidBoundaries("expected a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidBoundaries("the collection has no features")
    if len(features) > MAX_FEATURES:
        raise InvalidBoundaries(f"more than {MAX_FEATURES} features")
    out, seen, points = [], set(), 0
    for n, f in enumerate(features):
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
            raise InvalidBoundaries(f"feature {n} has no geometry")
        props = f.get("properties") or {}
        unit_id = props.get("unit_id") if isinstance(props, dict) else None
        if not isinstance(unit_id, str) or not unit_id:
            raise InvalidBoundaries(f"feature {n} has no properties.unit_id")
        if unit_id in seen:
            raise InvalidBoundaries(f"unit {unit_id} outlined twice")
        seen.add(unit_id)
        for ring in _rings(f["geometry"]):
            if not isinstance(ring, list) or len(ring) < 4:
                raise InvalidBoundaries(f"feature {n}: a ring needs at least 4 positions")
            for pos in ring:
                if (not isinstance(pos, list) or len(pos) < 2
                        or not all(isinstance(c, int | float) for c in pos[:2])
                        or not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90)):  # fmt: skip
                    raise InvalidBoundaries(f"feature {n}: positions are [longitude, latitude]")
            points += len(ring)
        if points > MAX_POINTS:
            raise InvalidBoundaries(f"more than {MAX_POINTS} positions: simplify the shapes")
        out.append({"type": "Feature", "properties": {"unit_id": unit_id,
                    "name": props.get("name")}, "geometry": f["geometry"]})  # fmt: skip
    return {"type": "FeatureCollection", "features": out}
