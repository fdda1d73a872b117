"""The conclusion parser on the three real sample documents and on focused snippets."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import pytest

from services.tasks.domain.parser import DraftItem, ParseResult, parse_conclusion
from tests.tasks._samples import sample, samples_dir, units

QN = "quang-nam-2022"
HY = "hung-yen-2023-cong-van"
NEWS = "hung-yen-2023-tin-tuc"


def parse(text: str, issued_on: date | None = None) -> ParseResult:
    return parse_conclusion(text, issued_on=issued_on, units=units())


def leads(item: DraftItem) -> list[tuple[str | None, str | None]]:
    return [(a.unit_id, a.group) for a in item.assignees if a.role == "lead"]


def supports(item: DraftItem) -> list[tuple[str | None, str | None]]:
    return [(a.unit_id, a.group) for a in item.assignees if a.role == "support"]


def only(items: list[DraftItem], needle: str) -> DraftItem:
    found = [i for i in items if needle in i.action]
    assert len(found) == 1, f"{needle!r}: {len(found)} items"
    return found[0]


def cited_dates(text: str) -> set[date]:
    """Every date written right after a document number/name ("… số 206/KH-UBND ngày …")."""
    out = set()
    for m in re.finditer(r"(?:/[\w\-Đđ.]+|Kế hoạch)\s+ngày\s+(\d{1,2})/(\d{1,2})/(\d{4})", text):
        out.add(date(int(m.group(3)), int(m.group(2)), int(m.group(1))))
    return out


def test_every_sample_parses_with_spans_that_slice_the_source() -> None:
    files = sorted(samples_dir().glob("*.txt"))
    assert len(files) >= 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        result = parse(text)
        cited = cited_dates(text)
        for item in result.items:
            start, end = item.span
            assert 0 <= start < end <= len(text)
            assert " ".join(text[start:end].split()) == item.action
            assert text[start:end] == text[start:end].strip()  # no stray whitespace
            if "\n" not in text[start:end] and "\u00a0" not in text[start:end]:
                assert text[start:end] == item.action
            assert item.deadline not in cited, (path.name, item.action[:60])


# ----------------------------------------------------------------- Quảng Nam 2022


@pytest.fixture(scope="module")
def qn() -> ParseResult:
    return parse(sample(QN))


def test_qn_document_date_from_first_sentence(qn: ParseResult) -> None:
    assert qn.issued_on == date(2022, 7, 25)
    assert qn.is_directive


def test_qn_deadlines_only_from_deadline_phrases(qn: ParseResult) -> None:
    deadlines = {i.deadline for i in qn.items if i.deadline}
    assert deadlines == {date(2022, 8, 4), date(2022, 10, 1), date(2022, 9, 1)}
    text = sample(QN)
    assert date(2022, 6, 23) in cited_dates(text) or date(2022, 6, 24) in cited_dates(text)
    assert not deadlines & cited_dates(text)


def test_qn_stttt_section_lead_and_support(qn: ParseResult) -> None:
    item = only(qn.items, "trước ngày 04/8/2022")
    assert item.deadline == date(2022, 8, 4)
    assert leads(item) == [("P21.STTTT", None)]
    assert supports(item) == [("P21.VP", None), (None, "related_units")]
    # the other bullets under "1. Sở Thông tin và Truyền thông" are led by it too
    for needle in ("bản đồ thực thi thể chế", "SMART Quảng Nam"):
        assert leads(only(qn.items, needle)) == [("P21.STTTT", None)]
    assert only(qn.items, "SMART Quảng Nam").recurrence == "monthly"
    assert only(qn.items, "bản đồ thực thi thể chế").deadline is None  # 24/6/2022 is cited


def test_qn_home_affairs_quarterly_and_deadline(qn: ParseResult) -> None:
    deadline_item = only(qn.items, "hoàn thành trước ngày 01/10/2022")
    assert leads(deadline_item) == [("P21.SNV", None)]
    assert deadline_item.deadline == date(2022, 10, 1)
    quarterly = only(qn.items, "định kỳ hằng quý")
    assert leads(quarterly) == [("P21.SNV", None)]
    assert quarterly.recurrence == "quarterly"
    assert quarterly.deadline is None


def test_qn_office_monthly_days(qn: ParseResult) -> None:
    item = only(qn.items, "từ ngày 01 đến ngày 05 hằng tháng")
    assert item.recurrence == "monthly:days=1-5"
    assert item.deadline is None
    assert leads(item) == [("P21.VP", None)]
    coop = only(qn.items, "Tiếp tục theo dõi, giám sát")
    assert (None, "departments") in supports(coop)


def test_qn_groups_lead_and_narrower_bullet(qn: ParseResult) -> None:
    item = only(qn.items, "hoàn thành trước ngày 01/9/2022")
    assert item.deadline == date(2022, 9, 1)
    assert leads(item) == [(None, "departments"), (None, "districts")]
    assert supports(item) == [("P21.VP", None), ("P21.STTTT", None)]
    gris = only(qn.items, "GRIS")
    assert gris.recurrence == "quarterly"
    assert leads(gris) == [(None, "departments"), (None, "districts")]
    narrower = only(qn.items, "kiện toàn, sắp xếp Bộ phận một cửa")
    assert leads(narrower) == [(None, "districts")]
    assert narrower.deadline is None


def test_qn_no_items_from_preamble_or_page_footer(qn: ParseResult) -> None:
    text = sample(QN)
    first_heading = text.index("1. Sở Thông tin và Truyền thông")
    assert all(i.span[0] > first_heading for i in qn.items)
    assert not any("Tin liên quan" in i.action for i in qn.items)
    assert len(qn.items) == 11


def test_qn_participants_resolve_bare_department_names(qn: ParseResult) -> None:
    refs = {p.name: p.unit_id for p in qn.participants}
    assert refs["Thông tin và Truyền thông"] == "P21.STTTT"
    assert refs["Văn phòng UBND tỉnh"] == "P21.VP"
    assert refs["Nội vụ"] == "P21.SNV"
    assert refs["Cục thuế"] is None


def test_qn_nfd_input_gives_same_items_and_spans_into_nfd_text() -> None:
    nfc = sample(QN)
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) != len(nfc)
    a, b = parse(nfc), parse(nfd)
    assert [(i.deadline, i.recurrence, leads(i), supports(i)) for i in a.items] == [
        (i.deadline, i.recurrence, leads(i), supports(i)) for i in b.items
    ]
    for item in b.items:
        sliced = unicodedata.normalize("NFC", nfd[item.span[0] : item.span[1]])
        assert " ".join(sliced.split()) == item.action


# ----------------------------------------------------------------- Hưng Yên 2023 dispatch


@pytest.fixture(scope="module")
def hy() -> ParseResult:
    return parse(sample(HY))


def test_hy_draft_year_and_no_invented_deadlines(hy: ParseResult) -> None:
    assert hy.issued_on is None and hy.reference_year == 2023
    assert hy.items
    assert all(i.deadline is None for i in hy.items)
    assert all(i.recurrence is None for i in hy.items)


def test_hy_enumeration_yields_one_lead_per_named_agency(hy: ParseResult) -> None:
    item = only(hy.items, "tổ chức khắc phục ngay")
    got = [(a.name, a.unit_id) for a in item.assignees]
    assert got == [
        ("Y tế", "P21.SYT"),
        ("Kế hoạch và Đầu tư", "P21.SKHDT"),
        ("Xây dựng", "P21.SXD"),
        ("Văn hoá - Thể thao và Du lịch", "P21.SVHTTDL"),
        ("Tài chính", "P21.STC"),
        ("Thanh tra tỉnh", "P21.TTR"),
        ("Văn Giang", "HYC.D02"),
        ("Phù Cừ", "HYC.D03"),
        ("Tiên Lữ", "HYC.D04"),
        ("Kim Động", "HYC.D05"),
        ("thành phố Hưng Yên", "HYC.D01"),
    ]
    assert all(a.role == "lead" for a in item.assignees)
    assert ("P21.SNV", None) not in supports(item)  # "gửi Sở Nội vụ" is a copy, not support


def test_hy_heading_groups_and_narrower_subjects(hy: ParseResult) -> None:
    item = only(hy.items, "Tăng cường kiểm tra công tác CCHC tại cơ quan")
    assert {g for _, g in leads(item)} >= {
        "departments",
        "public_service_units",
        "districts",
        "communes",
    }
    assert any(
        a.unit_id is None and a.group is None and "Quốc hội" in a.name for a in item.assignees
    )
    districts = only(hy.items, "chỉ đạo Bộ phận Một cửa cấp huyện")
    assert leads(districts) == [(None, "districts")]
    # the subject of one sentence does not capture the general sentences after it
    assert "Quyết định số 766" not in districts.action
    general = only(hy.items, "Đẩy mạnh triển khai thực hiện Quyết định số 766")
    assert (None, "departments") in leads(general) and (None, "communes") in leads(general)
    assert {i.section for i in hy.items} >= {"1", "2.a", "3.d", "3.đ", "3.g"}
    communes = only(hy.items, "đặc biệt là UBND cấp xã")
    assert leads(communes) == [(None, "all_units"), (None, "communes")]


def test_hy_descriptive_heading_lead_stays_unresolved(hy: ParseResult) -> None:
    item = only(hy.items, "Khẩn trương thực hiện các giải pháp khắc phục")
    assert [(a.name, a.unit_id, a.group) for a in item.assignees] == [
        ("Các đơn vị được UBND tỉnh giao tham mưu thực hiện các nhiệm vụ CCHC của tỉnh", None, None)
    ]


def test_hy_no_recipients_signature_or_closing(hy: ParseResult) -> None:
    text = sample(HY)
    first_heading = text.index("1. Các sở, ngành")
    assert all(i.span[0] > first_heading for i in hy.items)
    assert all(i.span[1] < text.index("Nơi nhận") for i in hy.items)
    assert not any("nghiêm túc thực hiện./." in i.action for i in hy.items)


def test_hy_page_break_does_not_split_a_paragraph(hy: ParseResult) -> None:
    item = only(hy.items, "nâng cao chất lượng phục vụ người dân và doanh")
    assert "doanh nghiệp khi đến liên hệ" in item.action


# ----------------------------------------------------------------- news article


def test_news_article_is_not_a_conclusion() -> None:
    result = parse(sample(NEWS))
    assert result.items == []
    assert not result.is_directive
    assert result.warnings


# ----------------------------------------------------------------- snippets

HEAD = "UBND tỉnh yêu cầu:\n\n"


def test_month_deadline_is_last_day_and_year_implied() -> None:
    text = (
        HEAD
        + "1. Sở Nội vụ\n\n- Tổng hợp báo cáo trong tháng 12/2020.\n\n- Gửi kết quả trước ngày 15/3.\n"
    )
    items = parse(text, issued_on=date(2023, 1, 10)).items
    assert [i.deadline for i in items] == [date(2020, 12, 31), date(2023, 3, 15)]
    assert all(leads(i) == [("P21.SNV", None)] for i in items)


def test_year_from_header_and_rolls_past_issue_date() -> None:
    body = "1. Sở Nội vụ\n\n- Gửi kết quả trước ngày 15/3.\n"
    dated = "Hưng Yên, ngày 20 tháng 12 năm 2023\n\n" + HEAD + body
    assert parse(dated).items[0].deadline == date(2024, 3, 15)
    draft = "Hưng Yên, ngày   tháng   năm 2023\n\n" + HEAD + body
    assert parse(draft).items[0].deadline == date(2023, 3, 15)
    undated = HEAD + body
    assert parse(undated).items[0].deadline is None  # no year known: never invented


def test_cited_document_dates_never_become_deadlines() -> None:
    text = HEAD + (
        "1. Sở Nội vụ\n\n- Thực hiện Kế hoạch số 206/KH-UBND ngày 23/12/2022 và Báo cáo 285/BC-SNV "
        "ngày 29/9/2023; chậm nhất ngày 10/11/2023 báo cáo UBND tỉnh.\n"
    )
    (item,) = parse(text).items
    assert item.deadline == date(2023, 11, 10)


def test_criteria_and_reporting_recurrence() -> None:
    text = HEAD + (
        "1. Sở Tư pháp\n\n- Nâng cao điểm số các TCTP: 3.2.5; 3.4.1.\n\n"
        "- Cải thiện tiêu chí thành phần 6.1.2 và 6.1.3.\n\n"
        "- Gửi báo cáo quý I, 6 tháng, 9 tháng và năm về Sở Nội vụ.\n"
    )
    items = parse(text).items
    assert items[0].criteria == ["3.2.5", "3.4.1"]
    assert items[1].criteria == ["6.1.2", "6.1.3"]
    assert items[2].recurrence == "reports:Q1,H1,M9,year"
    assert all(leads(i) == [("P21.STP", None)] for i in items)


def test_accent_and_case_insensitive_agency_matching() -> None:
    text = "UBND TỈNH YÊU CẦU:\n\n1. SỞ NỘI VỤ\n\n- Chủ trì, phối hợp với VAN PHONG UY BAN NHAN DAN TINH triển khai.\n"
    (item,) = parse(text, issued_on=date(2024, 5, 1)).items
    assert leads(item) == [("P21.SNV", None)]
    assert supports(item) == [("P21.VP", None)]


def test_validity_dates_respected_in_parsing() -> None:
    body = HEAD + "1. Sở Thông tin và Truyền thông\n\n- Rà soát hệ thống.\n"
    (old,) = parse(body, issued_on=date(2022, 7, 25)).items
    assert leads(old) == [("P21.STTTT", None)]
    (new,) = parse(body, issued_on=date(2025, 9, 1)).items
    assert [(a.name, a.unit_id) for a in new.assignees] == [("Sở Thông tin và Truyền thông", None)]


def test_numbered_directive_lines_are_items_with_their_own_subject() -> None:
    text = HEAD + (
        "1. Sở Nội vụ chủ trì, phối hợp với Sở Tư pháp tham mưu, hoàn thành trước ngày 15/3.\n\n"
        "- Báo cáo kết quả về UBND tỉnh.\n\n"
        "2. Khẩn trương rà soát TTHC, hoàn thành trước ngày 30/6\n"
    )
    items = parse(text, issued_on=date(2024, 1, 5)).items
    assert [(leads(i), supports(i), i.deadline) for i in items] == [
        ([("P21.SNV", None)], [("P21.STP", None)], date(2024, 3, 15)),
        ([("P21.SNV", None)], [], None),
        ([], [], date(2024, 6, 30)),
    ]


def test_periodic_report_calendar_is_a_recurrence_not_a_deadline() -> None:
    text = HEAD + (
        "1. Các sở, ban, ngành\n\n"
        "- Gửi báo cáo định kỳ quý I, 6 tháng, 9 tháng, năm về Sở Nội vụ trước ngày 15/3, "
        "15/6, 15/9, 10/12.\n\n"
        "- Tổng kết công tác thi đua trước ngày 15/12 hằng năm.\n"
    )
    report, yearly = parse(text, issued_on=date(2024, 1, 5)).items
    assert report.recurrence == "reports:Q1,H1,M9,year" and report.deadline is None
    assert yearly.recurrence == "yearly:by=12-15" and yearly.deadline is None
    assert leads(report) == [(None, "departments")]


def test_roman_topic_heading_and_lettered_agency_subheadings() -> None:
    text = HEAD + (
        "II. NHIỆM VỤ CỤ THỂ\n\n"
        "a) Sở Nội vụ:\n\n"
        "- Tham mưu kiện toàn Ban Chỉ đạo.\n\n"
        "b) UBND các xã, phường, thị trấn:\n\n"
        "- Niêm yết công khai TTHC hằng tháng.\n"
    )
    first, second = parse(text).items
    assert leads(first) == [("P21.SNV", None)]
    assert leads(second) == [(None, "communes")] and second.recurrence == "monthly"


def test_sectionless_dispatch_only_directed_paragraphs_with_deadline() -> None:
    text = (
        "Ủy ban nhân dân tỉnh yêu cầu Sở Nội vụ chủ trì, phối hợp với Văn phòng UBND tỉnh "
        "tổng hợp báo cáo, hoàn thành trước ngày 15/3.\n\n"
        "UBND tỉnh giao Sở Tư pháp rà soát văn bản QPPL.\n"
    )
    (item,) = parse(text, issued_on=date(2024, 1, 2)).items
    assert leads(item) == [("P21.SNV", None)] and supports(item) == [("P21.VP", None)]
    assert item.deadline == date(2024, 3, 15)
    assert text[item.span[0] : item.span[1]].startswith("Sở Nội vụ chủ trì")


def test_non_breaking_spaces_and_crlf() -> None:
    text = (
        HEAD.replace("\n", "\r\n")
        + "1. Sở\u00a0Nội vụ\r\n\r\n- Gửi báo cáo trước\u00a0ngày\u00a015/3/2024.\u00a0\r\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.SNV", None)] and item.deadline == date(2024, 3, 15)
    assert text[item.span[0] : item.span[1]] == "Gửi báo cáo trước\u00a0ngày\u00a015/3/2024."


def test_agency_outside_registry_leading_a_bullet_stays_unresolved() -> None:
    text = HEAD + (
        "1. Các cơ quan, đơn vị\n\n"
        "- Cục Thuế tỉnh chủ trì, phối hợp với Sở Tài chính rà soát thủ tục, "
        "hoàn thành trước ngày 30/9/2024.\n"
    )
    (item,) = parse(text).items
    assert [(a.name, a.role, a.unit_id) for a in item.assignees] == [
        ("Cục Thuế tỉnh", "lead", None),
        ("Sở Tài chính", "support", "P21.STC"),
    ]


def test_devseed_dispatch_parses_as_intended() -> None:
    from services.tasks.devseed import DEMO_DISPATCH

    result = parse(DEMO_DISPATCH)
    assert result.issued_on == date(2024, 10, 5)
    assert [(i.deadline, i.recurrence, i.criteria, leads(i)) for i in result.items] == [
        (date(2024, 11, 15), None, [], [("P21.SNV", None)]),
        (date(2024, 12, 31), None, ["3.2.5", "3.4.1"], [("P21.SNV", None)]),
        (None, "monthly:days=1-5", [], [("P21.VP", None)]),
        (None, "reports:Q1,H1,M9,year", [], [("P21.STP", None)]),
    ]


INSPECTION_NOTICE = """THÔNG BÁO
Kết luận kiểm tra công tác cải cách hành chính tại Sở Y tế

Thực hiện Kế hoạch số 206/KH-UBND ngày 23/12/2022 của UBND tỉnh, ngày 15/8/2023 Đoàn kiểm tra CCHC tỉnh đã kiểm tra tại Sở Y tế. Đoàn kiểm tra kết luận như sau:

I. KẾT QUẢ KIỂM TRA

1. Ưu điểm

- Ban hành kế hoạch CCHC năm 2023 kịp thời.

2. Tồn tại, hạn chế

- Chưa công khai đầy đủ TTHC tại Bộ phận Một cửa.

- Tỷ lệ hồ sơ trực tuyến thấp (TCTP 3.2.5).

II. KIẾN NGHỊ

1. Đối với Sở Y tế

- Khắc phục việc công khai TTHC, hoàn thành trước ngày 30/10/2023.

- Nâng cao điểm số các TCTP: 3.2.5; 3.4.1.

- Báo cáo kết quả khắc phục về Sở Nội vụ trước ngày 15/11/2023.
"""


def test_inspection_notice_findings_are_not_items() -> None:
    result = parse(INSPECTION_NOTICE)
    assert [f.text for f in result.findings] == [
        "Chưa công khai đầy đủ TTHC tại Bộ phận Một cửa.",
        "Tỷ lệ hồ sơ trực tuyến thấp (TCTP 3.2.5).",
    ]
    for f in result.findings:
        assert INSPECTION_NOTICE[f.span[0] : f.span[1]] == f.text
    assert [(i.deadline, i.criteria, leads(i)) for i in result.items] == [
        (date(2023, 10, 30), [], [("P21.SYT", None)]),
        (None, ["3.2.5", "3.4.1"], [("P21.SYT", None)]),
        (date(2023, 11, 15), [], [("P21.SYT", None)]),
    ]


def test_header_date_skips_cited_document_dates() -> None:
    text = (
        "Thực hiện Quyết định số 05/QĐ-UBND, ngày 10/01/2020 của UBND tỉnh; Hưng Yên, "
        "ngày 02/3/2023\n\n" + HEAD + "1. Sở Nội vụ\n\n- Gửi báo cáo trước ngày 15/3.\n"
    )
    result = parse(text)
    assert result.issued_on == date(2023, 3, 2)
    assert result.items[0].deadline == date(2023, 3, 15)


def test_results_read_like_mappings_too(qn: ParseResult) -> None:
    first = qn["items"][0]
    assert first["deadline"] == first.deadline == date(2022, 8, 4)
    assert first["assignees"][0]["unit_id"] == "P21.STTTT"
    assert first.to_dict()["span"] == first.span
    with pytest.raises(KeyError):
        first["nope"]


def test_enumeration_with_names_outside_the_registry() -> None:
    text = HEAD + (
        "1. Các địa phương\n\n"
        # names in no province (the registry holds every real district since issue 12)
        "UBND các huyện: Văn Giang, Ngọc Vân Thượng, thành phố Vọng Nguyệt tổ chức khắc phục "
        "ngay.\n\n"
        "Các Sở, ngành: Y tế, Xây dựng; tổ chức rà soát.\n"
    )
    first, second = parse(text, issued_on=date(2023, 5, 1)).items
    assert [(a.name, a.unit_id) for a in first.assignees] == [
        ("Văn Giang", "HYC.D02"),
        ("Ngọc Vân Thượng", None),
        ("thành phố Vọng Nguyệt", None),
    ]
    assert [(a.name, a.unit_id) for a in second.assignees] == [
        ("Y tế", "P21.SYT"),
        ("Xây dựng", "P21.SXD"),
    ]


def test_arbitrary_fragments_never_crash_and_spans_stay_valid() -> None:
    """Cut the samples at deterministic pseudo-random places (truncated headings, markers at
    the very end, NFD, upper case, flattened lines): parsing never fails and every span slices
    its own input to the item's action."""
    import random

    rnd = random.Random(20261123)
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples_dir().glob("*.txt"))]
    for text in texts:
        for _ in range(40):
            a = rnd.randrange(len(text))
            b = rnd.randrange(a, len(text) + 1)
            piece = text[a:b]
            variants = (
                piece,
                text[:b],
                unicodedata.normalize("NFD", piece),
                piece.upper(),
                piece.replace("\n", " "),
            )
            for s in variants:
                for item in parse(s).items:
                    start, end = item.span
                    assert 0 <= start < end <= len(s)
                    sliced = unicodedata.normalize("NFC", s[start:end])
                    assert " ".join(sliced.split()) == item.action


# ------------------------------------------------ shapes of real documents (our own wording)

# a Government Office notice's header: a central document, no province of its own
VPCP_HEAD = "VĂN PHÒNG CHÍNH PHỦ\n|\nSố: 1/TB-VPCP\n|\nHà Nội, ngày 16 tháng 11 năm 2025\n\n"
HY_HEAD = "UBND TỈNH HƯNG YÊN\n|\nSố: 12/KH-UBND\n|\nHưng Yên, ngày 02 tháng 6 năm 2025\n\n"


def test_inline_numbered_tasks_of_a_lettered_body_are_one_item_each() -> None:
    text = HY_HEAD + (
        "III. NHIỆM VỤ\n\n1. Về thủ tục hành chính\n"
        "a) Sở Tư pháp: (1) rà soát các thủ tục hành chính còn chồng chéo, hoàn thành trước "
        "ngày 30/6/2025; (2) chủ trì, phối hợp với Sở Nội vụ hướng dẫn các xã công khai "
        "thủ tục; (3) Sở Tài chính bố trí kinh phí số hóa hồ sơ, hoàn thành trong tháng 9 "
        "năm 2025.\n"
    )
    items = parse(text).items
    assert [(leads(i), i.deadline) for i in items] == [
        ([("P21.STP", None)], date(2025, 6, 30)),
        ([("P21.STP", None)], None),
        ([("P21.STC", None)], date(2025, 9, 30)),
    ]
    assert supports(items[1]) == [("P21.SNV", None)]


def test_a_list_of_short_objects_after_a_colon_is_one_task() -> None:
    text = HY_HEAD + (
        "1. Sở Tư pháp\n- Trình sửa đổi các quy định: (1) Quy chế một cửa; (2) Quy chế "
        "lưu trữ, hoàn thành trước ngày 15/7/2025.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.STP", None)] and item.deadline == date(2025, 7, 15)


def test_addressees_listed_by_semicolons_before_the_colon_lead_the_task() -> None:
    text = HY_HEAD + (
        "Đề nghị Sở Nội vụ, Sở Tư pháp; các đơn vị sự nghiệp công lập thuộc UBND tỉnh; "
        "Hội đồng nhân dân, Ủy ban nhân dân các xã, phường: tổ chức đánh giá cán bộ năm "
        "2025, hoàn thành trước ngày 05 tháng 12 năm 2025.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [
        ("P21.SNV", None),
        ("P21.STP", None),
        (None, "public_service_units"),
        (None, "communes"),
    ]
    assert item.deadline == date(2025, 12, 5)
    # a lead and a support each with its verb are no list of addressees
    text = HY_HEAD + (
        "1. Về cải cách\n- Giao Sở Nội vụ chủ trì; Sở Tư pháp phối hợp: rà soát thủ tục, "
        "hoàn thành trước ngày 30/6/2025.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.SNV", None)]


def test_evaluation_headings_opened_by_ve_are_findings_not_tasks() -> None:
    text = HY_HEAD + (
        "I. VỀ KẾT QUẢ ĐẠT ĐƯỢC\n(1) Sở Nội vụ đã ban hành nhiều văn bản hướng dẫn; "
        "(2) Sở Tư pháp đã rà soát toàn bộ thủ tục trong năm 2025.\n"
        "II. VỀ TỒN TẠI, HẠN CHẾ\n- Việc số hóa hồ sơ còn chậm.\n"
        "III. NHIỆM VỤ\n1. Sở Nội vụ chủ trì tổng hợp, báo cáo trước ngày 30/6/2025.\n"
    )
    result = parse(text)
    assert [(leads(i), i.deadline) for i in result.items] == [
        ([("P21.SNV", None)], date(2025, 6, 30))
    ]
    assert any("số hóa" in f.text for f in result.findings)


def _table(rows: list[list[str]]) -> str:
    return "|\n" + "|\n|\n".join("\n|\n".join(r) + "\n" for r in rows) + "|\n"


def test_a_progress_report_appended_to_a_task_table_is_not_tasks() -> None:
    tasks = [
        ["STT", "Nhiệm vụ", "Cơ quan chủ trì", "Thời hạn"],
        ["1", "Xây dựng kho dữ liệu dùng chung", "Sở Khoa học và Công nghệ", "30/9/2025"],
    ]
    report = [
        ["STT", "Tên nhiệm vụ", "Đơn vị chủ trì", "Thời hạn", "Kết quả thực hiện", "Tiến độ"],
        ["1", "Số hóa hồ sơ", "Sở Nội vụ", "31/3/2025", "Đã số hóa 80%", "Đang thực hiện"],
    ]
    # no row break between the task list's last row and the report's header (a crawl)
    body = (
        _table(tasks)[: -len("|\n")]
        + "\n".join(f"|\n{c}" for c in report[0])
        + "\n|\n|\n"
        + "\n|\n".join(report[1])
        + "\n|\n"
    )
    items = parse(HY_HEAD + "UBND tỉnh yêu cầu:\n\n" + body).items
    assert [(leads(i), i.deadline) for i in items] == [([("P21.SKHCN", None)], date(2025, 9, 30))]


def test_deadline_cues_of_real_documents() -> None:
    def deadline(sentence: str) -> date | None:
        (item,) = parse(HY_HEAD + "1. Sở Nội vụ\n- " + sentence + "\n").items
        return item.deadline

    assert deadline("Tổng hợp, báo cáo UBND tỉnh trong ngày 20 tháng 11 năm 2025.") == date(
        2025, 11, 20
    )
    assert deadline("Tháo gỡ khó khăn, xong cuối tháng 12 năm 2025.") == date(2025, 12, 31)
    assert deadline("Bảo đảm đến hết năm 2025 không còn hồ sơ trễ hạn.") == date(2025, 12, 31)
    assert deadline("Rà soát và công bố kết quả trong năm 2026.") == date(2026, 12, 31)
    # a year inside a purpose or a period is no deadline
    assert deadline("Phối hợp tháo gỡ vướng mắc để có thể triển khai trong năm 2026.") is None
    assert deadline("Xây dựng kịch bản tăng trưởng từ nay đến hết năm 2025.") is None


def test_a_central_document_names_provinces_in_an_enumeration() -> None:
    text = VPCP_HEAD + (
        "III. NHIỆM VỤ\n1. Về đô thị thông minh\n"
        "a) Ủy ban nhân dân các thành phố: Hà Nội, Cần Thơ gửi ý kiến về Bộ Khoa học và "
        "Công nghệ trước ngày 20 tháng 11 năm 2025.\n"
    )
    (item,) = parse(text).items
    named = [units().get(a.unit_id or "") for a in item.assignees if a.role == "lead"]
    assert [u.name if u else None for u in named] == ["Thành phố Hà Nội", "Thành phố Cần Thơ"]
    assert item.deadline == date(2025, 11, 20)


def test_assignments_chained_by_semicolons_are_one_item_each() -> None:
    text = HY_HEAD + (
        "1. Về chuyển đổi số\n- Giao Sở Tài chính bố trí kinh phí số hóa hồ sơ, hoàn thành trong "
        "tháng 9 năm 2025; Sở Nội vụ hướng dẫn các xã thực hiện, báo cáo trước ngày 30/10/2025.\n"
        # a list of addressees by semicolons is one subject, not a chain
        "- Giám đốc Sở Tư pháp; Thủ trưởng các sở, ban, ngành chịu trách nhiệm trước Chủ tịch "
        "UBND tỉnh về kết quả cải cách hành chính.\n"
    )
    items = parse(text).items
    assert [(leads(i), i.deadline) for i in items] == [
        ([("P21.STC", None)], date(2025, 9, 30)),
        ([("P21.SNV", None)], date(2025, 10, 30)),
        ([("P21.STP", None), (None, "departments")], None),
    ]


def test_central_documents_group_phrasings_of_ministries_and_localities() -> None:
    text = (
        VPCP_HEAD
        + "III. NHIỆM VỤ\n1. Các cơ quan Trung ương và địa phương rà soát dữ liệu, hoàn thành "
        "trước ngày 30/11/2025.\n2. Các cơ quan, bộ, ngành và địa phương gửi đề xuất kinh phí "
        "trước ngày 05/12/2025.\n"
    )
    assert [leads(i) for i in parse(text).items] == [
        [(None, "ministries"), (None, "provinces")],
        [(None, "ministries"), (None, "provinces")],
    ]


def test_in_the_coming_time_turns_an_evaluation_into_a_task() -> None:
    text = HY_HEAD + (
        "I. ĐÁNH GIÁ CHUNG\n\n"
        "Năm 2025 Sở Nội vụ đã hoàn thành phần lớn các chỉ tiêu cải cách hành chính.\n\n"
        "Trong thời gian tới, Sở Nội vụ rà soát vị trí việc làm, hoàn thành trước ngày "
        "30/9/2025.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.SNV", None)] and item.deadline == date(2025, 9, 30)


def test_a_line_broken_at_a_hyphen_is_not_a_bullet() -> None:
    """Hard-wrapped lines that start with "- " inside a name, a year span or a compound word
    go on with the line before; a real bullet after an unpunctuated title stays a bullet."""
    text = VPCP_HEAD + (
        "III. NHIỆM VỤ\n"
        "1. Đề nghị các Tập đoàn: Điện lực Việt Nam, Công nghiệp\n"
        "- Viễn thông Quân đội phủ sóng các bản vùng cao, hoàn thành trong tháng 12 năm 2025.\n"
        "2. Bộ Tài chính tổng hợp nhu cầu vốn phát triển kinh tế\n"
        "- xã hội vùng biên cho giai đoạn 2026\n"
        "- 2030, báo cáo trước ngày 15/12/2025.\n"
        "3. Về hạ tầng số\n"
        "- Bộ Khoa học và Công nghệ hướng dẫn các địa phương, hoàn thành trước ngày 20/12/2025.\n"
    )
    items = parse(text).items
    assert [[a.canonical for a in i.assignees if a.role == "lead"] for i in items] == [
        ["Tập đoàn Điện lực Việt Nam", "Tập đoàn Công nghiệp - Viễn thông Quân đội"],
        ["Bộ Tài chính"],
        ["Bộ Khoa học và Công nghệ"],
    ]
    assert "kinh tế - xã hội vùng biên cho giai đoạn 2026 - 2030" in items[1].action
    assert [i.deadline for i in items] == [date(2025, 12, 31), date(2025, 12, 15),
                                           date(2025, 12, 20)]  # fmt: skip


def test_a_list_of_groups_goes_on_into_an_enumeration() -> None:
    text = (
        VPCP_HEAD
        + "III. NHIỆM VỤ\n1. Các Bộ, ngành và các Tập đoàn: Điện lực Việt Nam, Bưu chính Viễn "
        "thông Việt Nam theo chức năng, nhiệm vụ xử lý kiến nghị của tỉnh.\n"
    )
    (item,) = parse(text).items
    assert [(a.group, a.canonical) for a in item.assignees if a.role == "lead"] == [
        ("ministries", None),
        (None, "Tập đoàn Điện lực Việt Nam"),
        (None, "Tập đoàn Bưu chính Viễn thông Việt Nam"),
    ]


def test_a_plan_task_given_only_by_its_title_and_fields() -> None:
    """Form-style plans: a numbered title with its fields right under it is a task; a time
    field "from a year on, and the years after" is a yearly duty, not a deadline; a span of
    years that goes on is neither; a yearly budget is no recurrence."""
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n\n"
        "1. Tập huấn nghiệp vụ cho công chức một cửa\n\n"
        "- Cơ quan chủ trì: Sở Nội vụ\n\n"
        "- Thời gian thực hiện: Quý IV/2025 và các năm tiếp theo.\n\n"
        "2. Kiểm tra việc giải quyết thủ tục hành chính\n\n"
        "- Cơ quan chủ trì: Sở Tư pháp\n\n"
        "- Thời gian thực hiện: Giai đoạn 2026-2030 và những năm tiếp theo.\n\n"
        "3. Số hóa hồ sơ còn tồn đọng\n\n"
        "- Cơ quan chủ trì: Sở Tài chính\n\n"
        "- Thời gian thực hiện: Quý IV/2025.\n\n"
        "III. KINH PHÍ\n\n"
        "Sở Tài chính bố trí kinh phí từ ngân sách hằng năm của các sở, ngành.\n"
    )
    items = parse(text).items
    assert [(leads(i), i.deadline, i.recurrence) for i in items] == [
        ([("P21.SNV", None)], None, "yearly"),
        ([("P21.STP", None)], None, None),
        ([("P21.STC", None)], date(2025, 12, 31), None),
        ([("P21.STC", None)], None, None),
    ]


def test_a_clause_with_its_own_time_is_the_same_subjects_next_task() -> None:
    """ "Bộ X làm A, trước ngày …; hướng dẫn B, trong tháng …": two tasks of Bộ X, each with
    its time; a clause naming its own subject after a semicolon leads its own task."""
    text = VPCP_HEAD + (
        "III. NHIỆM VỤ\n1. Về dữ liệu\n"
        "a) Bộ Tư pháp chủ trì xây dựng cơ sở dữ liệu hộ tịch, hoàn thành trước ngày 10 tháng "
        "12 năm 2025; hướng dẫn các địa phương cập nhật dữ liệu, hoàn thành trong tháng 12 năm "
        "2025; các bộ, ngành căn cứ hướng dẫn tổ chức rà soát, gửi kết quả về Bộ Tư pháp trước "
        "ngày 20 tháng 12 năm 2025.\n"
        "b) Bộ Y tế xây dựng sổ sức khỏe điện tử, hoàn thành trước ngày 15 tháng 12 năm 2025. "
        "Hướng dẫn các bệnh viện kết nối dữ liệu trong năm 2026.\n"
    )
    items = parse(text).items
    assert [([a.canonical or a.group for a in i.assignees if a.role == "lead"], i.deadline)
            for i in items] == [
        (["Bộ Tư pháp"], date(2025, 12, 10)),
        (["Bộ Tư pháp"], date(2025, 12, 31)),
        (["ministries"], date(2025, 12, 20)),
        (["Bộ Y tế"], date(2025, 12, 15)),
        (["Bộ Y tế"], date(2026, 12, 31)),
    ]  # fmt: skip


def test_a_provincial_body_written_with_its_province_heads_its_block() -> None:
    text = HY_HEAD + (
        "II. TRÁCH NHIỆM\n1. Các cơ quan được lấy ý kiến thẩm định\n"
        "a) Thuế tỉnh Hưng Yên\n- Đánh giá điều kiện hưởng ưu đãi đầu tư;\n"
        "- Xác định tình hình thực hiện nghĩa vụ thuế của nhà đầu tư.\n"
    )
    items = parse(text).items
    assert [[(a.name, a.canonical) for a in i.assignees if a.role == "lead"] for i in items] == [
        [("Thuế tỉnh Hưng Yên", "Thuế tỉnh")],
        [("Thuế tỉnh Hưng Yên", "Thuế tỉnh")],
    ]


def test_the_footnotes_at_the_end_are_no_tasks() -> None:
    body = "".join(
        f"{n}. Sở Nội vụ rà soát nhóm thủ tục thứ {n}, hoàn thành trước ngày {n}/12/2025.\n"
        for n in range(1, 7)
    )
    text = (
        HY_HEAD
        + "II. NHIỆM VỤ\n"
        + body
        + (
            "\n[1] Tỷ lệ thủ tục trực tuyến của các địa phương còn thấp, gồm:\n"
            "Hưng Yên (87,73%), Sở Tư pháp (80,10%) chưa đạt yêu cầu.\n"
            "[2] Sở Tài chính đã báo cáo tại Văn bản số 12/STC-KH.\n"
        )
    )
    items = parse(text).items
    assert [leads(i) for i in items] == [[("P21.SNV", None)]] * 6


def test_a_closing_formula_run_on_into_the_last_item_is_no_task() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n- Sở Tư pháp số hóa hồ sơ hộ tịch, hoàn thành trước 30/11/2025.\n"
        "Ủy ban nhân dân tỉnh yêu cầu Thủ trưởng các cơ quan, đơn vị được giao nhiệm vụ khẩn "
        "trương triển khai thực hiện./.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.STP", None)] and item.deadline == date(2025, 11, 30)
    assert item.action.endswith("30/11/2025.")


def test_a_numeral_that_ends_a_wrapped_sentence_is_no_heading() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n1. Sở Tư pháp hoàn thiện hồ sơ dự án luật, bảo đảm trình Quốc hội khóa\n"
        "XV.\n\n2. Sở Nội vụ rà soát biên chế, hoàn thành trước ngày 15/12/2025.\n"
    )
    items = parse(text).items
    assert [leads(i) for i in items] == [[("P21.STP", None)], [("P21.SNV", None)]]
    assert items[0].action.endswith("Quốc hội khóa XV.")


def test_a_branch_of_a_known_body_is_the_body_named() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n1. Ngân hàng Nhà nước Việt Nam - Chi nhánh Khu vực 4: Chủ trì phát triển "
        "thanh toán không dùng tiền mặt, hoàn thành trong năm 2026.\n"
        "2. Sở Tài chính phối hợp với Ngân hàng Nhà nước Việt Nam Chi nhánh Khu vực 4 và các sở, "
        "ngành liên quan bố trí kinh phí, hoàn thành trước ngày 15/12/2025.\n"
    )
    first, second = parse(text).items
    branch = "Ngân hàng Nhà nước Việt Nam - Chi nhánh Khu vực 4"
    assert [(a.role, a.canonical) for a in first.assignees] == [("lead", branch)]
    assert ("support", "Ngân hàng Nhà nước Việt Nam Chi nhánh Khu vực 4") in [
        (a.role, a.canonical) for a in second.assignees
    ]


def test_a_list_of_lower_case_items_without_punctuation_stays_a_list() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n1. Sở Nội vụ thực hiện các nội dung sau:\n"
        "- rà soát hồ sơ cán bộ\n- cập nhật cơ sở dữ liệu, hoàn thành trước ngày 15/12/2025\n"
    )
    items = parse(text).items
    assert [i.action for i in items] == [
        "rà soát hồ sơ cán bộ",
        "cập nhật cơ sở dữ liệu, hoàn thành trước ngày 15/12/2025",
    ]


def test_the_chief_of_an_office_names_the_office() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n1. Chánh Văn phòng UBND tỉnh; Chánh Thanh tra tỉnh; Thủ trưởng các sở, "
        "ban, ngành chịu trách nhiệm trước Chủ tịch UBND tỉnh về kết quả cải cách hành chính.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [("P21.VP", None), ("P21.TTR", None), (None, "departments")]


def test_departments_and_units_concerned_are_one_group() -> None:
    text = HY_HEAD + (
        "II. NHIỆM VỤ\n1. Các Sở, ngành, đơn vị liên quan kiện toàn đội ngũ pháp chế, hoàn "
        "thành trước ngày 15/12/2025.\n"
    )
    (item,) = parse(text).items
    assert leads(item) == [(None, "related_units")]
