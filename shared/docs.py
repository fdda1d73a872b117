"""API documentation that works without internet: Swagger UI and ReDoc served from assets
installed with the project (the `fastapi-offline` package ships the bundles), Vietnamese beside
English, and a service root that points to the docs and the dashboard instead of a 404."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"

# Vietnamese first, the English of the service's own description beside it.
SERVICE_VI = {
    "ingest": "Thu nhận dữ liệu hồ sơ, thủ tục hành chính từ Hệ thống thông tin giải quyết TTHC "
    "của tỉnh, từng phần và an toàn, và thông báo mọi thay đổi qua Kafka.",
    "scoring": "Tính điểm Bộ chỉ số 766 (Quyết định 766/QĐ-TTg) và PAR INDEX cho từng cơ quan, "
    "đơn vị theo kỳ, giải thích từng điểm bị trừ, xếp hạng và phát cảnh báo.",
    "tasks": "Chuyển thông báo kết luận kiểm tra và cảnh báo thành nhiệm vụ khắc phục có đơn vị "
    "chủ trì, thời hạn, theo dõi tiến độ và báo cáo.",
}
TAG_VI = {
    "health": "Tình trạng hoạt động, sẵn sàng và số đo (không cần token)",
    "session": "Danh tính người gọi theo token (vai trò, đơn vị)",
    "units": "Danh mục cơ quan, đơn vị: lịch sử sáp nhập, mã liên thông",
    "profiles": "Phương pháp đánh giá và các chỉ số",
    "scores": "Điểm theo kỳ, giải thích điểm bị trừ, xếp hạng, xu hướng",
    "alerts": "Cảnh báo do các quy tắc cảnh báo phát ra",
    "official": "Điểm công bố chính thức đặt cạnh điểm hệ thống tính",
    "exports": "Báo cáo CSV, XLSX, PDF theo mẫu để in",
    "conclusions": "Thông báo kết luận kiểm tra: nhập, phân tích văn bản, xác nhận nhiệm vụ",
    "items": "Nhiệm vụ khắc phục: danh sách, quy trình, tiến độ, gia hạn",
    "reports": "Báo cáo tiến độ và xuất dữ liệu",
    "sources": "Nguồn dữ liệu (hệ thống một cửa của tỉnh)",
    "runs": "Các lượt thu nhận dữ liệu",
    "dossiers": "Hồ sơ thủ tục hành chính",
    "quarantine": "Bản ghi lỗi bị cách ly, kèm lý do",
}


def bilingual_description(service: str, english: str) -> str:
    vi = SERVICE_VI.get(service)
    return f"{vi}\n\n*English:* {english}" if vi else english


def bilingual_tags(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tag in tags:
        vi = TAG_VI.get(tag["name"])
        desc = tag.get("description", "")
        out.append({**tag, "description": f"{vi}. — {desc}" if vi else desc})
    return out


def dashboard_url() -> str:
    return os.environ.get("DASHBOARD_URL", "http://127.0.0.1:8004")


def install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI), `/redoc` and `/` without any CDN; out of the OpenAPI schema."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — tài liệu API / API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/", include_in_schema=False)
    async def root() -> HTMLResponse:
        title = html.escape(app.title)
        dash = html.escape(dashboard_url())
        return HTMLResponse(
            f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
line-height:1.5}}a{{color:#0b5394}}</style></head><body>
<h1>{title}</h1>
<p>Đây là giao diện lập trình (API) của hệ thống theo dõi cải cách hành chính.
<br><small>This is an API of CCHC Monitor.</small></p>
<ul>
<li><a href="{dash}">Bảng điều hành</a> — dashboard</li>
<li><a href="docs">Tài liệu API (Swagger UI)</a> — API docs</li>
<li><a href="redoc">Tài liệu API (ReDoc)</a></li>
<li><a href="openapi.json">OpenAPI JSON</a></li>
<li><a href="readyz">Tình trạng sẵn sàng</a> — readiness</li>
</ul></body></html>"""
        )
