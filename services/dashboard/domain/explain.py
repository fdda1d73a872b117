"""Each lost point in Vietnamese, from the structured explanation the scoring API returns."""

from __future__ import annotations

from typing import Any

from services.dashboard.domain.figures import fmt

# The profile names what is short in English; the dashboard says it in Vietnamese. A profile
# that carries `shortfall_label_vi` on an indicator wins over this table.
SHORTFALL_VI = {
    "TTHC published late": "TTHC công bố không đúng hạn",
    "TTHC made public late": "TTHC công khai không đúng hạn",
    "TTHC public with incomplete content": "TTHC công khai chưa đầy đủ nội dung",
    "dossiers not synced to DVCQG": "hồ sơ chưa đồng bộ lên Cổng DVCQG",
    "late dossiers": "hồ sơ giải quyết trễ hạn",
    "TTHC not offered online": "TTHC chưa cung cấp dịch vụ công trực tuyến",
    "online services without an online dossier": "DVCTT chưa phát sinh hồ sơ trực tuyến",
    "dossiers not submitted online": "hồ sơ không nộp trực tuyến",
    "fee dossiers not paid online": "hồ sơ có phí chưa thanh toán trực tuyến",
    "results not issued electronically": "kết quả chưa cấp bản điện tử",
    "dossiers not digitised": "hồ sơ chưa được số hóa",
    "dossiers not reusing digitised data": "hồ sơ chưa khai thác lại dữ liệu số hóa",
    "dossiers not using the personal data store": "hồ sơ chưa sử dụng kho dữ liệu cá nhân",
    "certified copies not issued electronically": "bản sao chưa chứng thực điện tử",
    "dossiers without VNeID verification": "hồ sơ chưa xác thực VNeID",
    "dossiers not using population data": "hồ sơ chưa sử dụng dữ liệu dân cư",
    "petitions handled late": "phản ánh, kiến nghị xử lý trễ hạn",
    "unsatisfied petition ratings": "lượt đánh giá chưa hài lòng về xử lý phản ánh",
}


def explain_vi(
    entry: dict[str, Any], indicator: dict[str, Any] | None, names: dict[str, str] | None = None
) -> dict[str, Any]:
    """`{"indicator", "lost", "max", "shortfall", "contributors": [...]}` → a sentence and the
    procedures and agencies behind the loss."""
    name = (indicator or {}).get("name") or entry.get("name") or entry.get("indicator", "")
    code = (indicator or {}).get("code") or ""
    label = str(entry.get("shortfall_label") or "").strip()
    names = names or {}
    label_vi = (indicator or {}).get("shortfall_label_vi") or SHORTFALL_VI.get(label, label)
    sentence = f"Mất {fmt(entry.get('lost'))}/{fmt(entry.get('max'))} điểm ở chỉ số " + (
        f"{code} " if code else ""
    ) + f"«{name}»"  # fmt: skip
    shortfall = entry.get("shortfall")
    if shortfall:
        sentence += f": {fmt(shortfall, 0)} {label_vi}".rstrip()
    contributors = sorted(entry.get("contributors") or [], key=lambda c: -float(c.get("count", 0)))
    if contributors:
        top = contributors[0]
        sentence += (
            f", {fmt(100 * float(top.get('share', 0)), 0)}% trong số đó thuộc thủ tục "
            f"{top.get('procedure')} tại {names.get(top.get('unit') or '', top.get('unit'))}"
        )
    if entry.get("text"):
        # scoring says it in Vietnamese already, naming the procedures (TenTTHC) and agencies
        sentence = str(entry["text"]).rstrip(".")
    return {
        "text": sentence + ".",
        "indicator": entry.get("indicator"),
        "lost": entry.get("lost"),
        "contributors": [
            {
                "procedure": c.get("procedure"),
                "unit": names.get(c.get("unit") or "", c.get("unit")),
                "count": c.get("count"),
                "share": c.get("share"),
                "points": c.get("points"),
            }
            for c in contributors[:10]
        ],
    }
