"""archive.dates: real-world date shapes, round trips, and the never-raises contract."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone, tzinfo
from email.utils import format_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archive import dates
from archive.dates import ParsedDate, format_date, normalize_date, parse_trusted

UTC = timezone.utc
NOW = datetime(2022, 4, 29, 12, 0, 0, tzinfo=UTC)  # fetch time: 20:00 in Shanghai
SH = "Asia/Shanghai"

# (raw, tz, gmt_is, expected UTC instant or None, how)
CASES = [
    # RFC 822 / 1123 / 2822
    ("Fri, 29 Apr 2022 00:12:15 GMT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Fri, 29 Apr 2022 00:12:15 UT", SH, None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Fri, 29 Apr 2022 00:12:15 UTC", SH, None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Fri, 29 Apr 2022 00:12:15 Z", SH, None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Fri, 29 Apr 2022 08:12:15 +0800", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 19:12:15 -05:00", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 19:12:15 EST", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 20:12:15 EDT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 18:12:15 CST", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 19:12:15 CDT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 17:12:15 MST", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 18:12:15 MDT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 16:12:15 PST", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu, 28 Apr 2022 17:12:15 PDT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("29 Apr 2022 00:12:15 GMT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),  # no weekday
    ("Fri, 29 Apr 2022 00:12 GMT", "UTC", None, "2022-04-29T00:12:00Z", "rfc822"),  # no seconds
    ("Fri, 29 Apr 22 00:12:15 GMT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),  # 2-digit year
    ("Thu, 01 Jan 04 19:48:21 GMT", "UTC", None, "2004-01-01T19:48:21Z", "rfc822"),
    ("Mon, 29 Apr 2022 00:12:15 GMT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),  # wrong weekday
    ("Fri, 29 apr 2022 00:12:15 GMT", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("fri, 29 apr 2022 00:12:15 gmt", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Thu,  5 Apr 2012 10:00:00 GMT", "UTC", None, "2012-04-05T10:00:00Z", "rfc822"),
    ("Mon, 13 Feb, 2012 06:28:00 UTC", "UTC", None, "2012-02-13T06:28:00Z", "rfc822"),
    ("Wed, 19 Feb 2012 22:40:00 GMT-01:01", "UTC", None, "2012-02-19T23:41:00Z", "rfc822"),
    ("Thu, 30 Apr 2015 08:57:00 MET", "UTC", None, "2015-04-30T07:57:00Z", "rfc822"),
    ("Fri Apr 29 2022 08:12:15 GMT+0800 (China Standard Time)", "UTC", None, "2022-04-29T00:12:15Z", "rfc822"),
    ("Sun Jul 15 01:16:00 +0000 2012", SH, None, "2012-07-15T01:16:00Z", "rfc822"),  # Twitter
    ("Fri Apr 29 08:12:15 CST 2022", SH, None, "2022-04-29T00:12:15Z", "rfc822"),  # Java on a Chinese server
    ("Sun Jan  4 16:29:06 2004", "UTC", None, "2004-01-04T16:29:06Z", "english"),  # asctime
    ("Fri, 29 Apr 2022 08:12:15 XYZ", SH, None, "2022-04-29T00:12:15Z", "english"),  # unknown zone: tz
    # ISO 8601 and kin
    ("2022-04-29T00:12:15Z", SH, None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2022-04-29T08:12:15+08:00", "UTC", None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2022-04-29T08:12:15+0800", "UTC", None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2022-04-29T08:12:15.987654+08:00", "UTC", None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2022-04-29T00:12:15.123Z", "UTC", None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2007-04-23T23:25:47.538+10:00", "UTC", None, "2007-04-23T13:25:47Z", "iso8601"),
    ("2003-12-31T10:14:55-08:00", "UTC", None, "2003-12-31T18:14:55Z", "iso8601"),
    ("20220429T081215Z", "UTC", None, "2022-04-29T08:12:15Z", "iso8601"),
    ("2022-04-29T08:12Z", "UTC", None, "2022-04-29T08:12:00Z", "iso8601"),
    ("2022-04-29 08:12:15", "UTC", None, "2022-04-29T08:12:15Z", "iso8601"),
    ("2022-04-29T08:12:15", SH, None, "2022-04-29T00:12:15Z", "iso8601"),
    ("2022-04-29", SH, None, "2022-04-28T16:00:00Z", "iso8601"),
    ("2022-07-04 12:00", "America/New_York", None, "2022-07-04T16:00:00Z", "iso8601"),
    ("2003-12", "UTC", None, "2003-12-01T00:00:00Z", "iso8601"),
    ("2004-07-08 23:56:58 -00:20", "UTC", None, "2004-07-09T00:16:58Z", "rfc822"),  # MSSQL
    ("2022/04/29 08:12:15", SH, None, "2022-04-29T00:12:15Z", "naive"),
    ("2022/04/29 08:12", "UTC", None, "2022-04-29T08:12:00Z", "naive"),
    ("2022.04.29", SH, None, "2022-04-28T16:00:00Z", "naive"),
    # epoch seconds and milliseconds
    (1651191135, SH, None, "2022-04-29T00:12:15Z", "epoch"),
    (1651191135123, SH, None, "2022-04-29T00:12:15Z", "epoch"),
    (1651191135.9, "UTC", None, "2022-04-29T00:12:15Z", "epoch"),
    ("1651191135", SH, None, "2022-04-29T00:12:15Z", "epoch"),
    ("1651191135123", SH, None, "2022-04-29T00:12:15Z", "epoch"),
    (1651191135, SH, SH, "2022-04-29T00:12:15Z", "epoch"),  # gmt_is has no say over epochs
    # Chinese absolute
    ("2022年04月29日 08:12:15", SH, None, "2022-04-29T00:12:15Z", "zh-absolute"),
    ("2022年4月29日", SH, None, "2022-04-28T16:00:00Z", "zh-absolute"),
    ("2022年4月29日 08:12", SH, None, "2022-04-29T00:12:00Z", "zh-absolute"),
    ("2022年04月29日 08时12分15秒", SH, None, "2022-04-29T00:12:15Z", "zh-absolute"),
    ("2022年4月29日 下午3:20", SH, None, "2022-04-29T07:20:00Z", "zh-absolute"),
    ("2022年4月29日 上午11:05", SH, None, "2022-04-29T03:05:00Z", "zh-absolute"),
    ("04月29日 08:12", SH, None, "2022-04-29T00:12:00Z", "zh-absolute"),
    ("04月30日 10:00", SH, None, "2022-04-30T02:00:00Z", "zh-absolute"),  # within a day of now
    ("05月01日 08:12", SH, None, "2021-05-01T00:12:00Z", "zh-absolute"),  # too far ahead: last year
    ("12月31日 23:00", SH, None, "2021-12-31T15:00:00Z", "zh-absolute"),
    ("发布时间：2022-04-29 08:12 来源：新华社", SH, None, "2022-04-29T00:12:00Z", "zh-absolute"),
    ("更新于 2022/4/29 8:12", SH, None, "2022-04-29T00:12:00Z", "zh-absolute"),
    # Chinese relative (now is 2022-04-29 20:00 in Shanghai)
    ("刚刚", SH, None, "2022-04-29T12:00:00Z", "relative"),
    ("30秒前", SH, None, "2022-04-29T11:59:30Z", "relative"),
    ("5分钟前", SH, None, "2022-04-29T11:55:00Z", "relative"),
    ("3小时前", SH, None, "2022-04-29T09:00:00Z", "relative"),
    ("3个小时前", SH, None, "2022-04-29T09:00:00Z", "relative"),
    ("2天前", SH, None, "2022-04-27T12:00:00Z", "relative"),
    ("昨天 08:12", SH, None, "2022-04-28T00:12:00Z", "relative"),
    ("前天 21:05", SH, None, "2022-04-27T13:05:00Z", "relative"),
    ("今天 08:12", SH, None, "2022-04-29T00:12:00Z", "relative"),
    # English relative
    ("just now", "UTC", None, "2022-04-29T12:00:00Z", "relative"),
    ("5 minutes ago", "UTC", None, "2022-04-29T11:55:00Z", "relative"),
    ("an hour ago", "UTC", None, "2022-04-29T11:00:00Z", "relative"),
    ("3 hrs ago", "UTC", None, "2022-04-29T09:00:00Z", "relative"),
    ("2 days ago", "UTC", None, "2022-04-27T12:00:00Z", "relative"),
    ("yesterday", SH, None, "2022-04-27T16:00:00Z", "relative"),
    ("Yesterday at 8:12 PM", "UTC", None, "2022-04-28T20:12:00Z", "relative"),
    # written-out English
    ("Friday, April 29, 2022 8:12 AM", SH, None, "2022-04-29T00:12:00Z", "english"),
    ("April 29, 2022 at 8:12 PM", "UTC", None, "2022-04-29T20:12:00Z", "english"),
    ("Apr 29, 2022", "UTC", None, "2022-04-29T00:00:00Z", "english"),
    ("29 April 2022", SH, None, "2022-04-28T16:00:00Z", "english"),
    ("Apr 29 08:12", "UTC", None, "2022-04-29T08:12:00Z", "english"),  # year inferred
    ("Feb 29 10:00", "UTC", None, "2020-02-29T10:00:00Z", "english"),  # latest leap year
    ("Dec 2003", "UTC", None, "2003-12-01T00:00:00Z", "english"),
    # slash dates: day-first only when the first field can't be a month
    ("29/04/2022 08:12", "UTC", None, "2022-04-29T08:12:00Z", "naive"),
    ("04/29/2022", "UTC", None, "2022-04-29T00:00:00Z", "naive"),
    ("04/05/2022", "UTC", None, "2022-04-05T00:00:00Z", "naive"),
    # a source that writes its local time as GMT
    ("Fri, 29 Apr 2022 08:12:15 GMT", "UTC", SH, "2022-04-29T00:12:15Z", "rfc822"),
    ("Fri, 29 Apr 2022 08:12:15 +0000", "UTC", SH, "2022-04-29T00:12:15Z", "rfc822"),
    ("2022-04-29T08:12:15Z", "UTC", SH, "2022-04-29T00:12:15Z", "iso8601"),
    ("Fri, 29 Apr 2022 08:12:15 +0800", "UTC", SH, "2022-04-29T00:12:15Z", "rfc822"),  # real offset kept
    # unknown
    (None, "UTC", None, None, "unknown"),
    ("", "UTC", None, None, "unknown"),
    ("   ", "UTC", None, None, "unknown"),
    ("nonsense", "UTC", None, None, "unknown"),
    ("2022-04-29\x00", "UTC", None, "2022-04-29T00:00:00Z", "naive"),  # dateutil reads NUL as a space
    ("08:12", "UTC", None, None, "unknown"),  # a time but no date
    ("Friday", "UTC", None, None, "unknown"),
    ("2022-02-29", "UTC", None, None, "unknown"),
    ("2003-12-31T25:14:55Z", "UTC", None, None, "unknown"),
    ("Sun, 99 Jun 2009 12:00:00 GMT", "UTC", None, None, "unknown"),
    ("Sun, 31 Dec 9999 23:59:59 -9999", "UTC", None, None, "unknown"),
    ("2022年13月45日", SH, None, None, "unknown"),
    (0, "UTC", None, None, "unknown"),
    (99999999999999999, "UTC", None, None, "unknown"),
    (float("nan"), "UTC", None, None, "unknown"),
    (True, "UTC", None, None, "unknown"),
]


@pytest.mark.parametrize(("raw", "tz", "gmt_is", "expected", "how"), CASES, ids=[repr(c[0]) for c in CASES])
def test_real_world_shapes(raw, tz, gmt_is, expected, how):
    parsed = normalize_date(raw, tz=tz, now=NOW, gmt_is=gmt_is)
    assert parsed.how == how
    assert (format_date(parsed.value) if parsed.known else None) == expected
    assert parsed.raw == ("" if raw is None else str(raw))


def test_value_is_utc_whole_seconds():
    value = normalize_date("2022-04-29T08:12:15.999+08:00").value
    assert value == datetime(2022, 4, 29, 0, 12, 15, tzinfo=UTC)
    assert value.tzinfo is UTC


def test_accepts_tzinfo_objects_and_naive_now():
    parsed = normalize_date("今天 08:12", tz=ZoneInfo(SH), now=NOW.replace(tzinfo=None))
    assert format_date(parsed.value) == "2022-04-29T00:12:00Z"
    assert normalize_date("2022-04-29 08:12", tz=timezone(timedelta(hours=-3))).value == datetime(
        2022, 4, 29, 11, 12, tzinfo=UTC
    )


def test_bad_zone_name_is_a_configuration_error():
    with pytest.raises(ZoneInfoNotFoundError):
        normalize_date("2022-04-29", tz="Mars/Olympus_Mons")


def test_parsed_date_is_frozen():
    parsed = ParsedDate(None, "", "unknown")
    assert not parsed.known
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.value = NOW  # type: ignore[misc]


# --- format_date


def test_format_date():
    value = datetime(2022, 4, 29, 8, 12, 15, 999999, tzinfo=ZoneInfo(SH))
    assert format_date(value) == "2022-04-29T00:12:15Z"
    assert format_date(value, "rfc1123") == "Fri, 29 Apr 2022 00:12:15 GMT"
    assert format_date(datetime(2022, 4, 29, 0, 12, 15)) == "2022-04-29T00:12:15Z"  # naive means UTC
    with pytest.raises(ValueError, match="style"):
        format_date(value, "rfc3339")


# --- parse_trusted


@pytest.mark.parametrize(
    ("raw", "how"),
    [
        ("2022-04-30T11:59:59Z", "iso8601"),  # within the day of slack
        ("2022-04-30T12:00:01Z", "untrusted:future"),
        ("2099-01-01", "untrusted:future"),
        ("1990-01-01T00:00:00Z", "iso8601"),
        ("1989-12-31T23:59:59Z", "untrusted:too-old"),
        ("Thu, 01 Jan 1970 00:00:00 GMT", "untrusted:too-old"),
        ("garbage", "unknown"),
    ],
)
def test_parse_trusted(raw, how):
    parsed = parse_trusted(raw, now=NOW)
    assert parsed.how == how
    assert parsed.known == (not how.startswith(("untrusted", "unknown")))
    assert parsed.raw == raw


def test_parse_trusted_limits_are_adjustable():
    kwargs = {"now": NOW, "not_before": datetime(2022, 1, 1, tzinfo=UTC), "future_slack": timedelta(0)}
    assert parse_trusted("2021-12-31", **kwargs).how == "untrusted:too-old"
    assert parse_trusted("2022-04-29T12:00:01Z", **kwargs).how == "untrusted:future"
    assert parse_trusted("2022-04-29T12:00:00Z", **kwargs).known


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_parse_trusted_window(value):
    parsed = parse_trusted(format_date(value), now=NOW)
    trusted = datetime(1990, 1, 1, tzinfo=UTC) <= value.replace(microsecond=0) <= NOW + timedelta(days=1)
    assert parsed.known == trusted


# --- round trips: format a random instant in every supported shape, parse it back

ZONES = ["UTC", SH, "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
instants = st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC))
zones = st.one_of(
    st.sampled_from(ZONES),
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)

SHAPES = {
    "rfc1123": lambda local: format_date(local, "rfc1123"),
    "rfc2822-offset": format_datetime,
    "iso-offset": datetime.isoformat,
    "iso-z": format_date,
    "iso-naive": lambda local: local.strftime("%Y-%m-%dT%H:%M:%S"),
    "naive-space": lambda local: local.strftime("%Y-%m-%d %H:%M:%S"),
    "slashes": lambda local: local.strftime("%Y/%m/%d %H:%M:%S"),
    "english": lambda local: local.strftime("%A, %B %d, %Y %I:%M:%S %p"),
    "epoch-s": lambda local: int(local.timestamp()),
    "epoch-ms": lambda local: int(local.timestamp() * 1000),
    "epoch-s-str": lambda local: str(int(local.timestamp())),
    "epoch-ms-str": lambda local: str(int(local.timestamp() * 1000)),
    "zh-absolute": lambda local: f"{local.year}年{local.month}月{local.day}日 {local:%H:%M:%S}",
    "zh-in-text": lambda local: f"发布时间：{local:%Y-%m-%d %H:%M:%S} 来源：本站",
}


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=150, deadline=None)
@given(value=instants, tz=zones)
def test_round_trip(shape, value, tz):
    local = value.astimezone(_zone(tz))
    # A wall time repeated when clocks go back names two instants; the first one is taken.
    assume(local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset())
    parsed = normalize_date(SHAPES[shape](local), tz=tz, now=NOW)
    assert parsed.value == value.replace(microsecond=0)


# --- never raises

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.text(alphabet="0123456789 :-/.,+TZGMTAPRaprmy年月日时分秒前天昨刚上下午\x00", max_size=40),
    st.from_regex(r"\d{1,14}(\.\d{1,4})?", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(raw=garbage, tz=st.sampled_from(ZONES), gmt_is=st.sampled_from([None, SH]))
def test_never_raises(raw, tz, gmt_is):
    parsed = normalize_date(raw, tz=tz, now=NOW, gmt_is=gmt_is)
    assert isinstance(parsed, ParsedDate)
    assert parsed.value is None or (parsed.value.tzinfo is UTC and parsed.value.microsecond == 0)
    assert parsed.known == (parsed.how != "unknown")


# --- the one-parse path: a date matching _FULL_RFC822 is parsed against one probe, not two

_WORDS = ["Mon", "Sat", "Jan", "Sep", "Dec", "Sept", "May", "PM", "Foo", "GMT", "EST", "CST", "Z", "JAN"]
_NUMBERS = st.sampled_from(["0", "00", "1", "07", "29", "31", "32", "60", "99", "0026", "2022", "1000", "9999"])
_TIMES = st.sampled_from(["00:00", "08:12", "23:59:59", "24:00", "08:61", "12:00:60", "00:12:15"])
_ZONE_TOKENS = st.sampled_from(["+0000", "-0500", "+0800", "+0099", "+9999", "GMT", "UT", "UTC", "Z", "CST", "JST",
                                "XYZ", "PM"])
near_rfc822 = st.tuples(
    st.sampled_from(["", *(w + ", " for w in _WORDS)]), _NUMBERS, st.sampled_from(_WORDS), _NUMBERS, _TIMES,
    _ZONE_TOKENS,
).map(lambda p: f"{p[0]}{p[1]} {p[2]} {p[3]} {p[4]} {p[5]}")


def _probe(text: str, default: datetime, context: object) -> object:
    try:
        return dates._DATEUTIL.parse(text, default=default, tzinfos=context.resolve_zone)
    except (ValueError, OverflowError) as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(near_rfc822, st.from_regex(dates._FULL_RFC822, fullmatch=True)), tz=st.sampled_from(ZONES))
def test_a_full_rfc822_date_leaves_the_probes_nothing_to_fill(text, tz):
    # What _dateutil's shortcut rests on: both probes read such a date alike (or both refuse it).
    assume(dates._FULL_RFC822.fullmatch(text))
    context = dates._Context(_zone(tz), None, NOW)
    assert _probe(text, dates._PROBE_A, context) == _probe(text, dates._PROBE_B, context)
