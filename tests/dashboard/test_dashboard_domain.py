"""The dashboard's pure pieces: signed sessions, PKCE, colour bands, Vietnamese wording."""

from __future__ import annotations

import base64
import hashlib

from services.dashboard.domain.explain import explain_vi
from services.dashboard.domain.figures import band, change_words, previous_period, sparkline
from services.dashboard.domain.session import pkce_pair, sign, unsign

NOW = 1_800_000_000.0


def test_session_is_signed_and_expires() -> None:
    cookie = sign({"token": "t", "role": "viewer"}, "s3cret", ttl_s=60, now=NOW)
    assert unsign(cookie, "s3cret", now=NOW + 59)["role"] == "viewer"  # type: ignore[index]
    assert unsign(cookie, "s3cret", now=NOW + 61) is None, "expired"
    assert unsign(cookie, "other", now=NOW) is None, "another key"
    _, _, mac = cookie.partition(".")
    forged = base64.urlsafe_b64encode(b'{"token":"t","role":"admin","exp":9999999999}')
    assert unsign(forged.decode().rstrip("=") + "." + mac, "s3cret", now=NOW) is None
    for junk in (None, "", "abc", "a.b", "." * 5):
        assert unsign(junk, "s3cret", now=NOW) is None


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == digest.decode()
    assert pkce_pair()[0] != verifier


def test_bands_and_words() -> None:
    assert [band(x, 20) for x in (9.99, 10, 13.99, 14, None)] == [
        "red", "amber", "amber", "green", "none"
    ]  # fmt: skip
    assert change_words(1.25) == "tăng 1,25 điểm" and change_words(-0.5) == "giảm 0,5 điểm"
    assert change_words(None) == "chưa có kỳ trước"
    assert [previous_period(p) for p in ("202601", "2026Q1", "2026")] == ["202512", "2025Q4",
                                                                          "2025"]  # fmt: skip
    assert sparkline([40, None, 45.5], ["T7", "T8", "T9"], 100).count("<circle") == 2


def test_lost_points_explained_in_vietnamese_with_names() -> None:
    entry = {"indicator": "prog_on_time", "lost": 15, "max": 20, "shortfall": 3,
             "shortfall_label": "late dossiers",
             "contributors": [{"procedure": "2.002", "unit": "P.C1", "count": 2, "share": 0.667,
                               "points": 10}]}  # fmt: skip
    out = explain_vi(
        entry, {"name": "Hồ sơ giải quyết đúng hạn", "code": "2.1"}, {"P.C1": "Xã Một"}
    )
    assert out["text"] == (
        "Mất 15/20 điểm ở chỉ số 2.1 «Hồ sơ giải quyết đúng hạn»: 3 hồ sơ giải quyết trễ hạn, "
        "67% trong số đó thuộc thủ tục 2.002 tại Xã Một."
    )
    assert out["contributors"][0]["unit"] == "Xã Một"
