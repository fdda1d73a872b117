"""A choropleth of units from GeoJSON, drawn as inline SVG on the server (no map library, no
tiles: works offline). Longitude is scaled by cos(latitude) around the map's middle, which is
accurate enough for one province."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from services.dashboard.domain.figures import band, fmt


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry.get("type") == "Polygon":
        return list(geometry["coordinates"])
    if geometry.get("type") == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def choropleth(collection: dict[str, Any], scores: dict[str, dict[str, Any]],
               maximum: float, period: str, width: int = 1000) -> str:  # fmt: skip
    """SVG with one linked path per feature, coloured by its unit's band; `scores` maps unit id
    to {"name", "total"}."""
    features = [f for f in collection.get("features", []) if _rings(f.get("geometry") or {})]
    points = [p for f in features for ring in _rings(f["geometry"]) for p in ring]
    if not points:
        return ""
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lons) - min(lons)) * kx, 1e-9)
    span_y = max(max(lats) - min(lats), 1e-9)
    scale = width / span_x
    height = max(1, round(span_y * scale))

    def xy(p: list[float]) -> str:
        return f"{(p[0] - min(lons)) * kx * scale:.1f},{(max(lats) - p[1]) * scale:.1f}"

    paths = []
    for f in features:
        uid = f["properties"]["unit_id"]
        info = scores.get(uid, {})
        name = info.get("name") or f["properties"].get("name") or uid
        d = " ".join("M" + " L".join(xy(p) for p in ring) + " Z" for ring in _rings(f["geometry"]))
        total = info.get("total")
        paths.append(
            f'<a href="/units/{escape(uid)}?period={escape(period)}" data-unit="{escape(uid)}">'
            f'<path class="band-{band(total, maximum)}" d="{d}"><title>{escape(name)}: '
            f"{fmt(total)} điểm</title></path></a>"
        )
    return (
        f'<svg id="map" class="map" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Bản đồ xã, phường theo điểm">{"".join(paths)}</svg>'
    )
