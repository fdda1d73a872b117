"""The simulated province's data: a year of dossiers and petitions, as a function of a clock.

Every dossier is generated once, from the seed, as a full life cycle (a list of timed events).
What the API shows at simulator clock `t` is that life cycle cut at `t`: a dossier is visible
once submitted, its status is the last event's, and `NgayCapNhat` is the time of the last event
at or before `t`. Advancing the clock therefore makes new dossiers appear and open ones move on,
and the state at any clock is a pure function of (seed, size, clock).
"""

from __future__ import annotations

import bisect
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

from services.ingest.simulator.catalogue import (
    Agency,
    Procedure,
    build_procedures,
    load_agencies,
    load_dissolved_agencies,
)

VN = timezone(timedelta(hours=7), "ICT")
DAY = 86_400
HOUR = 3_600
DEFAULT_CLOCK = datetime(2026, 10, 1, 8, 0, tzinfo=VN)
Feed = Literal["dossiers", "procedures", "petitions"]
FEEDS: tuple[Feed, ...] = ("dossiers", "procedures", "petitions")

MALFORMATIONS = (
    "unknown_agency",
    "missing_code",
    "nul_byte",
    "date_before_2000",
    "date_in_future",
    "received_after_finished",
    "bad_status",
)

# Event kinds (index into _ACTIONS) and the status each one leaves the dossier in.
_ACTIONS: tuple[tuple[str, int | None], ...] = (
    ("Nộp hồ sơ trực tuyến", 1),  # 0
    ("Tiếp nhận hồ sơ", 2),  # 1
    ("Chuyển xử lý", 4),  # 2
    ("Từ chối tiếp nhận hồ sơ", 3),  # 3
    ("Yêu cầu thanh toán phí, lệ phí", 6),  # 4
    ("Đã thanh toán trực tuyến", 4),  # 5
    ("Yêu cầu bổ sung hồ sơ", 5),  # 6
    ("Tiếp nhận hồ sơ bổ sung", 4),  # 7
    ("Phát hành phiếu xin lỗi và hẹn lại ngày trả kết quả", None),  # 8
    ("Công dân rút hồ sơ", 7),  # 9
    ("Dừng xử lý hồ sơ", 8),  # 10
    ("Hoàn thành xử lý", 9),  # 11
    ("Trả kết quả", 10),  # 12
    ("Đồng bộ hồ sơ lên Cổng Dịch vụ công quốc gia", None),  # 13
)
_OFFICERS = (
    "Nguyễn Thị Hương",
    "Trần Văn Minh",
    "Lê Thu Trang",
    "Phạm Đức Anh",
    "Đỗ Thị Ngọc",
    "Vũ Hoàng Long",
    "Hoàng Thị Mai",
    "Bùi Quang Huy",
)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def fmt(t: int) -> str:
    """Epoch seconds → national API timestamp `yyyyMMddHHmmss` in Vietnam time (UTC+7, no
    daylight saving). Integer arithmetic: pre-generating a million dossiers calls it ~10^7
    times, and `strftime` was half of that time."""
    if type(t) is int:
        days, secs = divmod(t + 25_200, 86_400)
        d = date.fromordinal(_EPOCH_ORDINAL + days)
        if d.year >= 1000:
            hours, rest = divmod(secs, 3600)
            return f"{d.year}{d.month:02d}{d.day:02d}{hours:02d}{rest // 60:02d}{rest % 60:02d}"
    return datetime.fromtimestamp(t, VN).strftime("%Y%m%d%H%M%S")


def parse_ts(value: str) -> int:
    """`yyyyMMddHHmmss` (Vietnam time) or ISO 8601 → epoch seconds."""
    value = value.strip()
    if len(value) == 14 and value.isdigit():
        dt = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN)
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=VN)
    return int(dt.timestamp())


def _weekday(t: int) -> int:
    return ((t + 7 * HOUR) // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _day_start(t: int) -> int:
    return t - (t + 7 * HOUR) % DAY


def add_working_days(t: int, n: int) -> int:
    """`n` working days (Mon–Fri) after `t`, at 17:00 Vietnam time of that day."""
    wd = _weekday(t)
    if wd >= 5:
        t += (7 - wd) * DAY
        wd = 0
    weeks, rem = divmod(n, 5)
    t += weeks * 7 * DAY
    if wd + rem >= 5:
        rem += 2
    return _day_start(t + rem * DAY) + 17 * HOUR


@dataclass(slots=True)
class Dossier:
    index: int
    code: str
    agency: int  # index into Simulator.agencies
    procedure: int  # index into Simulator.procedures
    channel: int
    submitted: int
    received: int  # 0 if never received
    due0: int  # NgayHenTra first promised
    events: list[tuple[int, int]]  # (time, action index), sorted by time
    supplements: list[tuple[int, int, int]]  # (requested, resubmitted or 0, new due)
    apology: tuple[int, int] | None  # (issued, new return date)
    finished: int  # 0 = never (withdrawn before end / rejected)
    returned: int
    rejected: int
    paid_online: int
    fee_paid_at: int
    digitised: bool
    vneid: bool
    reused: bool
    e_result: bool
    malformed: str | None = None
    times: list[int] = field(default_factory=list)  # event times, for bisect


@dataclass(slots=True)
class Petition:
    index: int
    code: str
    agency: int
    title: str
    received: int
    due: int
    handled: int  # 0 = never within the simulated horizon
    rated: int
    satisfied: bool | None
    times: list[int] = field(default_factory=list)


class Dataset:
    """All generated data for one (seed, size, start clock)."""

    def __init__(
        self,
        seed: int = 42,
        dossiers: int = 20_000,
        clock: datetime = DEFAULT_CLOCK,
        horizon_days: int = 60,
        malformed_rate: float = 0.0,
        nfd_rate: float = 0.1,
    ) -> None:
        self.seed = seed
        self.start_clock = int(clock.timestamp())
        self.horizon_days = horizon_days
        self.malformed_rate = malformed_rate
        rng = random.Random(f"{seed}:catalogue")
        self.agencies: list[Agency] = load_agencies()
        self.procedures: list[Procedure] = build_procedures(self.agencies, rng)
        self.procedure_updated: list[int] = [
            int(datetime.combine(p.published_on, datetime.min.time(), VN).timestamp()) + 9 * HOUR
            for p in self.procedures
        ]
        self.procedure_nfd: list[bool] = [rng.random() < nfd_rate for _ in self.procedures]
        # the dissolved agencies follow the current ones: a dossier dated before its agency
        # existed carries a predecessor's code (an old ward's or department's), as history does
        self.current_agencies = len(self.agencies)
        self.agencies += load_dissolved_agencies()
        self._agency_by_code = {a.code: i for i, a in enumerate(self.agencies)}
        self._predecessors: dict[int, list[int]] = {}
        for i, a in enumerate(self.agencies[self.current_agencies :], self.current_agencies):
            for code in a.successors:
                new = self._agency_by_code[code]
                if self.agencies[new].level == a.level:  # districts: through their wards
                    self._predecessors.setdefault(new, []).append(i)
        self.dossiers: list[Dossier] = self._gen_dossiers(dossiers)
        self.petitions: list[Petition] = self._gen_petitions(max(1, dossiers // 40))

    # ------------------------------------------------------------------------------ dossiers

    def _gen_dossiers(self, n: int) -> list[Dossier]:
        rng = random.Random(f"{self.seed}:dossiers:{n}")
        start = self.start_clock - 365 * DAY
        span = (365 + self.horizon_days) * DAY
        communes = [
            i for i, a in enumerate(self.agencies) if a.level == "commune" and a.valid_to is None
        ]
        # (procedure index, agency index or -1 for "any commune") and cumulative weights.
        choices: list[tuple[int, int]] = []
        weights: list[float] = []
        for pi, p in enumerate(self.procedures):
            choices.append((pi, -1 if p.commune_level else self._agency_by_code[p.agency_code]))
            weights.append(p.weight * (len(communes) / 8 if p.commune_level else 1.0))
        cum = []
        acc = 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        # Submission times first, sorted, so codes (agency-yymmdd-seq) follow arrival order.
        raw_times = sorted(start + int(rng.random() * span) for _ in range(n))
        seq_per_day: dict[tuple[int, int], int] = {}
        out: list[Dossier] = []
        malformed_every = round(1 / self.malformed_rate) if self.malformed_rate > 0 else 0
        for i, t0 in enumerate(raw_times):
            pi, ai = choices[bisect.bisect_left(cum, rng.random() * acc)]
            if ai < 0:
                ai = communes[rng.randrange(len(communes))]
            proc = self.procedures[pi]
            # Channel by the procedure's online level.
            r = rng.random()
            online_share = {"none": 0.0, "partial": 0.45, "full": 0.75}[proc.online_level]
            channel = 2 if r < online_share else (3 if r > 0.97 else 1)
            if channel != 2:  # desks work office hours on weekdays
                day = _day_start(t0)
                if _weekday(day) >= 5:
                    day += (7 - _weekday(day)) * DAY
                t0 = day + 7 * HOUR + 30 * 60 + int(rng.random() * 9 * HOUR)
            ai = self._agency_at(ai, t0, rng)
            key = (ai, _day_start(t0))
            seq = seq_per_day[key] = seq_per_day.get(key, 0) + 1
            code = f"{self.agencies[ai].code}-{fmt(t0)[2:8]}-{seq:04d}"
            out.append(self._life(i, code, ai, pi, proc, channel, t0, rng))
            if malformed_every and i % malformed_every == malformed_every // 2:
                out[-1].malformed = MALFORMATIONS[(i // malformed_every) % len(MALFORMATIONS)]
        return out

    def _agency_at(self, ai: int, t0: int, rng: random.Random) -> int:
        """The agency that received a dossier at `t0`: before `ai` existed, one of its
        predecessors (an old ward, a quarter of the time its district; a merged department)."""
        agency = self.agencies[ai]
        start = agency.valid_from
        if start is None or t0 >= int(datetime.combine(start, datetime.min.time(), VN).timestamp()):
            return ai
        olds = self._predecessors.get(ai)
        if not olds:
            return ai
        old = olds[rng.randrange(len(olds))]
        parent = self.agencies[old].parent_code
        if parent is not None and parent in self._agency_by_code and rng.random() < 0.25:
            return self._agency_by_code[parent]
        return old

    def _life(
        self,
        i: int,
        code: str,
        ai: int,
        pi: int,
        proc: Procedure,
        channel: int,
        t0: int,
        rng: random.Random,
    ) -> Dossier:
        ev: list[tuple[int, int]] = []
        if channel == 2:
            ev.append((t0, 0))
            # Online dossiers are picked up within office hours, up to a working day later.
            t1 = max(t0 + 10 * 60, add_working_days(t0, 0) - 8 * HOUR) + int(
                rng.random() * 6 * HOUR
            )
        else:
            t1 = t0
        d = Dossier(
            index=i,
            code=code,
            agency=ai,
            procedure=pi,
            channel=channel,
            submitted=t0,
            received=0,
            due0=0,
            events=ev,
            supplements=[],
            apology=None,
            finished=0,
            returned=0,
            rejected=0,
            paid_online=0,
            fee_paid_at=0,
            digitised=rng.random() < (0.8 if channel == 2 else 0.5),
            vneid=channel == 2 and rng.random() < 0.6,
            reused=rng.random() < 0.2,
            e_result=False,
        )
        if channel == 2 and rng.random() < 0.03:  # not accepted
            d.rejected = t1
            ev.append((t1, 3))
            return self._finish(d, rng)
        d.received = t1
        if channel == 2:
            ev.append((t1, 1))
        else:
            ev.append((t1, 1))
        due = add_working_days(t1, proc.days)
        d.due0 = due
        t = t1 + 5 * 60 + int(rng.random() * HOUR)
        ev.append((t, 2))
        if proc.fee and channel == 2:
            paid_after = int(rng.random() * 2 * DAY)
            ev.append((t + 60, 4))
            t = t + 60 + paid_after
            ev.append((t, 5))
            d.paid_online = 1 if rng.random() < 0.4 else 2
            d.fee_paid_at = t
        r = rng.random()
        n_supp = 2 if r < 0.015 else (1 if r < 0.10 else 0)
        window = max(due - t, HOUR)
        for _ in range(n_supp):
            req = t + int(rng.random() * window * 0.4)
            wait = int((0.5 + rng.random() * 7) * DAY)
            resub = req + wait
            due = due + wait
            d.supplements.append((req, resub, due))
            ev.append((req, 6))
            ev.append((resub, 7))
            t = resub
        outcome = rng.random()
        if outcome < 0.01:
            end = t + int(rng.random() * max(due - t, HOUR))
            ev.append((end, 9))  # withdrawn by the applicant
            d.finished = end
            return self._finish(d, rng)
        if outcome < 0.02:
            end = t + int(rng.random() * max(due - t, HOUR))
            ev.append((end, 10))  # processing stopped
            d.finished = end
            return self._finish(d, rng)
        late = rng.random() < (0.06 + 0.25 * (n_supp == 2))
        if late:
            end = due + int((0.1 + rng.random() * 8) * DAY)
            if rng.random() < 0.8:  # apology letter, at most once, around the missed date
                issued = due - int(rng.random() * DAY)
                d.apology = (max(issued, t + 60), end + int(rng.random() * DAY))
                ev.append((d.apology[0], 8))
        else:
            end = t + int((0.15 + rng.random() * 0.8) * max(due - t, HOUR))
        d.finished = end
        ev.append((end, 11))
        d.e_result = rng.random() < 0.5
        if rng.random() < 0.92:
            d.returned = end + int(rng.random() * 3 * DAY)
            ev.append((d.returned, 12))
        return self._finish(d, rng)

    def _finish(self, d: Dossier, rng: random.Random) -> Dossier:
        last = max(t for t, _ in d.events)
        if rng.random() < 0.85:
            d.events.append((last + int((0.1 + rng.random()) * HOUR), 13))
        d.events.sort()
        d.times = [t for t, _ in d.events]
        return d

    def dossier_updated(self, d: Dossier, clock: int) -> int:
        """NgayCapNhat at `clock` (0 = not yet visible)."""
        k = bisect.bisect_right(d.times, clock)
        return d.times[k - 1] if k else 0

    def render_dossier(self, d: Dossier, clock: int) -> dict[str, Any]:
        k = bisect.bisect_right(d.times, clock)
        events = d.events[:k]
        proc = self.procedures[d.procedure]
        agency = self.agencies[d.agency]
        status = 1
        synced = 0
        history = []
        for t, a in events:
            action, st = _ACTIONS[a]
            if st is not None:
                status = st
            if a == 13:
                synced = 1
            history.append(
                {
                    "NguoiXuLy": _OFFICERS[(d.index + a) % len(_OFFICERS)],
                    "ChucDanh": "Công chức một cửa" if a in (0, 1, 3, 12) else "Chuyên viên",
                    "ThoiDiemXuLy": fmt(t),
                    "PhongBanXuLy": agency.name,
                    "NoiDungXuLy": action,
                    "TrangThai": status,
                }
            )
        supplements = []
        due = d.due0
        for req, resub, new_due in d.supplements:
            if req > clock:
                break
            supplements.append(
                {
                    "NgayYeuCauBoSung": fmt(req),
                    "NgayTiepNhanBoSung": fmt(resub) if resub <= clock else "",
                    "NgayHenTraTruoc": fmt(due),
                    "NgayHenTraMoi": fmt(new_due) if resub <= clock else "",
                }
            )
            if resub <= clock:
                due = new_due
        apologies = []
        if d.apology and d.apology[0] <= clock:
            apologies.append(
                {
                    "NgayXinLoi": fmt(d.apology[0]),
                    "NgayHenTraMoi": fmt(d.apology[1]),
                    "LyDo": "Hồ sơ cần xác minh thêm",
                }
            )
        fees = []
        if proc.fee:
            fees.append(
                {
                    "TenPhiLePhi": proc.fee_name,
                    "MaPhiLePhi": f"LP{proc.code}",
                    "HinhThucThu": 2 if d.paid_online else 1,
                    "Gia": proc.fee,
                    "LoaiPhiLePhi": 1 if proc.fee_name == "Lệ phí" else 2,
                }
            )
        finished = d.finished if 0 < d.finished <= clock else 0
        returned = d.returned if 0 < d.returned <= clock else 0
        results = []
        if finished and status in (9, 10):
            results.append(
                {
                    "TenGiayTo": f"{proc.result_type} - {proc.name}",
                    "MaThanhPhanHoSo": f"KQ{proc.code}",
                    "GiayToId": f"{d.code}-KQ1",
                    "DuongDanTepTinKetQua": (
                        f"https://igate.hungyen.gov.vn/files/{d.code}/kq1.pdf" if d.e_result else ""
                    ),
                }
            )
        rec: dict[str, Any] = {
            "MaHoSo": d.code,
            "MaTTHC": proc.code,
            "TenTTHC": proc.name,
            "MaLinhVuc": proc.field_code,
            "TenLinhVuc": proc.field_name,
            "KenhThucHien": d.channel,
            "MaDonVi": agency.code,
            "TenDonVi": agency.name,
            "NgayNopHoSo": fmt(d.submitted),
            "NgayTiepNhan": fmt(d.received) if 0 < d.received <= clock else "",
            "NgayHenTra": fmt(due) if d.received and d.received <= clock else "",
            "NgayKetThucXuLy": fmt(finished) if finished else "",
            "NgayTra": fmt(returned) if returned else "",
            "NgayTuChoi": fmt(d.rejected) if 0 < d.rejected <= clock else "",
            "TrangThaiHoSo": status,
            "HoSoCoThanhPhanSoHoa": int(d.digitised),
            "DuocThanhToanTrucTuyen": d.paid_online if 0 < d.fee_paid_at <= clock else 0,
            "TaiKhoanDuocXacThucVoiVNeID": int(d.vneid),
            "DaDongBoDVCQG": synced,
            "DongBoKhoDuLieuCaNhan": int(self.pds_synced(d)),
            "SuDungDuLieuDanCu": int(self.citizen_data_used(d)),
            "DanhSachLePhi": fees,
            "DanhSachThanhPhanHoSo": [
                {
                    "TenThanhPhan": "Tờ khai theo mẫu",
                    "DuocSoHoa": int(d.digitised),
                    "DuocTaiSuDung": int(d.reused),
                },
                {
                    "TenThanhPhan": "Giấy tờ tùy thân",
                    "DuocSoHoa": int(d.digitised),
                    "DuocTaiSuDung": 0,
                },
            ],
            "DanhSachHoSoBoSung": supplements,
            "DanhSachPhieuXinLoi": apologies,
            "DanhSachGiayToKetQua": results,
            "QuaTrinhXuLy": history,
            "NgayCapNhat": fmt(events[-1][0]) if events else "",
        }
        if d.malformed:
            _malform(rec, d.malformed, clock)
        return rec

    # ------------------------------------------------------------------------------ petitions

    def _gen_petitions(self, n: int) -> list[Petition]:
        rng = random.Random(f"{self.seed}:petitions:{n}")
        start = self.start_clock - 365 * DAY
        span = (365 + self.horizon_days) * DAY
        topics = (
            "Phản ánh thời gian giải quyết hồ sơ chậm",
            "Kiến nghị hướng dẫn thủ tục rõ hơn",
            "Phản ánh thái độ công chức tiếp nhận",
            "Kiến nghị bổ sung thanh toán trực tuyến",
            "Phản ánh lỗi hệ thống dịch vụ công trực tuyến",
        )
        out = []
        for i, t0 in enumerate(sorted(start + int(rng.random() * span) for _ in range(n))):
            ai = rng.randrange(self.current_agencies)
            due = add_working_days(t0, 10)
            r = rng.random()
            if r < 0.05:
                handled = 0
            elif r < 0.15:
                handled = due + int((0.5 + rng.random() * 10) * DAY)
            else:
                handled = t0 + int((0.1 + rng.random() * 0.9) * (due - t0))
            rated, satisfied = 0, None
            if handled and rng.random() < 0.6:
                rated = handled + int(rng.random() * 5 * DAY)
                satisfied = rng.random() < (0.88 if handled <= due else 0.4)
            p = Petition(
                index=i,
                code=f"PAKN-{fmt(t0)[:8]}-{i:06d}",
                agency=ai,
                title=topics[rng.randrange(len(topics))],
                received=t0,
                due=due,
                handled=handled,
                rated=rated,
                satisfied=satisfied,
            )
            p.times = sorted(t for t in (t0, t0 + HOUR, handled, rated) if t)
            out.append(p)
        return out

    def petition_updated(self, p: Petition, clock: int) -> int:
        k = bisect.bisect_right(p.times, clock)
        return p.times[k - 1] if k else 0

    def render_petition(self, p: Petition, clock: int) -> dict[str, Any]:
        handled = p.handled if 0 < p.handled <= clock else 0
        rated = 0 < p.rated <= clock
        state = 3 if handled else (2 if p.received + HOUR <= clock else 1)
        return {
            "MaPAKN": p.code,
            "TieuDe": p.title,
            "MaDonVi": self.agencies[p.agency].code,
            "NgayTiepNhan": fmt(p.received),
            "HanXuLy": fmt(p.due),
            "NgayXuLy": fmt(handled) if handled else "",
            "TrangThai": state,
            "DanhGiaHaiLong": (1 if p.satisfied else 0) if rated else None,
            "PhanLoai": {"tthc": "TTHC", "staff": "CBCCVC"}.get(self.petition_category(p), "KHAC"),
            "NgayCapNhat": fmt(self.petition_updated(p, clock)),
        }

    # ------------------------------------------------------------------------------ procedures

    def render_procedure(self, i: int, clock: int) -> dict[str, Any]:
        p = self.procedures[i]
        name = unicodedata.normalize("NFD", p.name) if self.procedure_nfd[i] else p.name
        return {
            "MaTTHC": p.code,
            "TenTTHC": name,
            "MaLinhVuc": p.field_code,
            "TenLinhVuc": p.field_name,
            "MaDonVi": p.agency_code,
            "CapThucHien": "Cấp xã" if p.commune_level else "Cấp tỉnh",
            "MucDoDVC": {"none": 2, "partial": 3, "full": 4}[p.online_level],
            "DVCTrucTuyen": {"none": "", "partial": "Một phần", "full": "Toàn trình"}[
                p.online_level
            ],
            "CoPhiLePhi": int(p.fee > 0),
            "LePhi": p.fee,
            "LoaiKetQua": p.result_type,
            "ThoiHanGiaiQuyet": p.days,
            "NgayCongBo": p.published_on.strftime("%Y%m%d"),
            "HanCongBo": p.publish_due_on.strftime("%Y%m%d"),
            "NgayCongKhai": p.public_on.strftime("%Y%m%d"),
            "HanCongKhai": p.public_due_on.strftime("%Y%m%d"),
            "NoiDungDayDu": int(p.content_complete),
            **{
                k: int(v)
                for k, v in zip(
                    _PROCEDURE_FLAG_FIELDS, self.procedure_flags(i).values(), strict=True
                )
            },
            "NgayCapNhat": fmt(self.procedure_updated[i]),
        }

    # ------------------------------------------------- facts of the portal's 2026 metrics
    # Derived from the item's index and the seed (no draw from the generators' RNGs), so every
    # other field stays as it was for a given seed.

    def _share(self, tag: int, i: int) -> float:
        return ((i * 2654435761 + self.seed * 40503 + tag * 9973) % 4294967296) / 4294967296

    def pds_synced(self, d: Dossier) -> bool:
        """Digitised data shared to the applicant's DVCQG personal data store."""
        return d.digitised and self._share(1, d.index) < 0.1

    def citizen_data_used(self, d: Dossier) -> bool:
        """Filled from the national population database (mostly VNeID accounts)."""
        return self._share(2, d.index) < (0.6 if d.vneid else 0.15)

    def procedure_flags(self, i: int) -> dict[str, bool]:
        p = self.procedures[i]
        cert = "chứng thực" in p.name.lower()
        return {
            "full_eligible": p.online_level != "none",
            "citizen": self._share(3, i) < 0.4,
            "certification": cert,
            "e_cert": cert and self._share(4, i) < 0.5,
        }

    def petition_category(self, p: Petition) -> str:
        """What a petition is about, from its title: staff conduct, procedures, or other."""
        t = p.title.lower()
        if "thái độ" in t or "công chức" in t:
            return "staff"
        return "tthc" if ("thủ tục" in t or "hồ sơ" in t) else "other"

    # ------------------------------------------------------------------------------ generic

    def feed_items(self, feed: Feed) -> Sequence[Any]:
        if feed == "dossiers":
            return self.dossiers
        if feed == "petitions":
            return self.petitions
        return range(len(self.procedures))

    def updated_at(self, feed: Feed, item: Any, clock: int) -> int:
        if feed == "dossiers":
            return self.dossier_updated(item, clock)
        if feed == "petitions":
            return self.petition_updated(item, clock)
        u = self.procedure_updated[item]
        return u if u <= clock else 0

    def render(self, feed: Feed, item: Any, clock: int) -> dict[str, Any]:
        if feed == "dossiers":
            return self.render_dossier(item, clock)
        if feed == "petitions":
            return self.render_petition(item, clock)
        return self.render_procedure(item, clock)

    def key(self, feed: Feed, item: Any) -> str:
        """The stable ordering tie-breaker (the record's code at the source)."""
        if feed == "procedures":
            return str(self.procedures[item].code)
        return str(item.code)

    def agency_code(self, feed: Feed, item: Any) -> str:
        if feed == "procedures":
            return str(self.procedures[item].agency_code)
        return str(self.agencies[item.agency].code)


_PROCEDURE_FLAG_FIELDS = (
    "DuDieuKienToanTrinh", "KetNoiDuLieuDanCu", "LaThuTucChungThuc", "ChungThucBanSaoDienTu",
)  # fmt: skip
"""National-style fields of `Dataset.procedure_flags`, in its order."""


def _malform(rec: dict[str, Any], kind: str, clock: int) -> None:
    if kind == "unknown_agency":
        rec["MaDonVi"] = "999.99.99.H99"
    elif kind == "missing_code":
        rec["MaHoSo"] = ""
    elif kind == "nul_byte":
        rec["TenTTHC"] = rec["TenTTHC"][:5] + "\x00" + rec["TenTTHC"][5:]
        rec["MaTTHC"] = rec["MaTTHC"] + "\x00"
    elif kind == "date_before_2000":
        rec["NgayNopHoSo"] = "19000101000000"
    elif kind == "date_in_future":
        future = datetime.fromtimestamp(clock, UTC) + timedelta(days=3 * 365)
        rec["NgayTiepNhan"] = future.astimezone(VN).strftime("%Y%m%d%H%M%S")
    elif kind == "received_after_finished":
        rec["NgayKetThucXuLy"] = "20250701080000"
    elif kind == "bad_status":
        rec["TrangThaiHoSo"] = "đang xử lý"


def today(clock: int) -> date:
    return datetime.fromtimestamp(clock, VN).date()
