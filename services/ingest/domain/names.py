"""Names an integrator reads beside the codes: dossier statuses (Vietnamese first, English
beside) and our units' names from the unit registry."""

from __future__ import annotations

import functools
import json

from services.ingest.domain.agencies import UNITS_PATH

# national TrangThaiHoSo
STATUS_NAMES: dict[int, tuple[str, str]] = {
    1: ("Mới đăng ký", "registered"),
    2: ("Đã tiếp nhận", "received"),
    3: ("Không được tiếp nhận", "not accepted"),
    4: ("Đang xử lý", "processing"),
    5: ("Yêu cầu bổ sung hồ sơ", "supplement requested"),
    6: ("Chờ thực hiện nghĩa vụ tài chính", "awaiting fee payment"),
    7: ("Công dân yêu cầu rút hồ sơ", "withdrawn by the applicant"),
    8: ("Dừng xử lý", "processing stopped"),
    9: ("Đã xử lý xong", "processed"),
    10: ("Đã trả kết quả", "result returned"),
}
CHANNEL_NAMES: dict[int, str] = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Bưu chính công ích"}


def status_name(status: int) -> str:
    vi, en = STATUS_NAMES.get(status, ("Không rõ", "unknown"))
    return f"{vi} ({en})"


@functools.cache
def unit_names() -> dict[str, str]:
    data = json.loads(UNITS_PATH.read_text(encoding="utf-8"))
    return {u["id"]: u["name"] for u in data["units"]}
