"""The project's one date normalizer: any date a feed or page carries -> an aware UTC instant, or unknown.

Rules are tried in this order; the first that matches names itself in ``ParsedDate.how``:

===============  ========================================================================
``epoch``        int/float or digit string: seconds if 1e8 <= v < 1e10, milliseconds if
                 1e11 <= v < 1e13 (both 1973..2286); any other magnitude is unknown
``iso8601``      ``dateutil.parser.isoparse``: every ISO 8601 shape, with or without a zone
``rfc822``       ``dateutil.parser.parse`` and the string names a zone: RFC 822/1123/2822,
                 asctime, JavaScript ``Date.toString()``, ``2022/04/29 08:12 +0800`` ...
``english``      ``dateutil.parser.parse``, no zone, words: ``Apr 29, 2022``, ``29 April 2022``
``naive``        ``dateutil.parser.parse``, no zone, numbers only: ``2022/04/29 08:12``
``zh-absolute``  ``2022年4月29日 下午3:20``, ``04月29日 08:12``, ``发布于 2022-04-29 08:12``
``relative``     ``刚刚``, ``3分钟前``, ``昨天 08:12``, ``2 hours ago``, ``yesterday`` (from ``now``)
``unknown``      nothing matched, or the date does not exist
===============  ========================================================================

Decisions:

* A value without a zone is wall time in ``tz``; a date without a time is midnight there.
  An unrecognised zone abbreviation counts as no zone.
* A missing year (``Apr 29 08:12``, ``04月29日``) is the latest year that puts the date no more
  than one day after ``now``: listing pages drop the current year. A missing day is the 1st
  (``2003-12``, ``Dec 2003``); a string with a time or weekday but no date is unknown.
* Slash dates follow dateutil, month first: ``04/05/2022`` is 5 April. A field above 12 can only
  be the day, so ``29/04/2022`` is 29 April and ``04/29/2022`` too. Two-digit years follow
  dateutil (within 50 years of today).
* ``GMT+0800`` means UTC+8, as JavaScript writes it, not the POSIX reading (UTC-8) dateutil uses.
* ``CST`` is US Central (RFC 822) unless ``tz`` is at UTC+8, where it is China Standard Time:
  that is what Java's ``Date.toString()`` prints on Chinese servers.
* A bad ``tz`` or ``gmt_is`` name raises: it is configuration, not input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from dateutil.parser import isoparse, parser

UTC = timezone.utc

_HOUR = 3600
# Zone abbreviations seen in feeds ("CST" is decided in _Context.resolve_zone).
_ZONE_OFFSETS = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5 * _HOUR, "EDT": -4 * _HOUR, "CDT": -5 * _HOUR,
    "MST": -7 * _HOUR, "MDT": -6 * _HOUR, "PST": -8 * _HOUR, "PDT": -7 * _HOUR,
    "WET": 0, "WEST": _HOUR, "BST": _HOUR, "CET": _HOUR, "CEST": 2 * _HOUR,
    "MET": _HOUR, "MEST": 2 * _HOUR, "EET": 2 * _HOUR, "EEST": 3 * _HOUR,
    "HKT": 8 * _HOUR, "SGT": 8 * _HOUR, "JST": 9 * _HOUR, "KST": 9 * _HOUR,
}
_MAX_LEN = 256  # a date field, not an article; keeps dateutil's cost bounded

# dateutil fills fields a string lacks from `default`; parsing against two defaults that differ
# in every date field shows which were missing (no public dateutil API tells). 2000 and 2004
# are leap years, so a year-less "Feb 29" still parses.
_PROBE_A = datetime(2000, 1, 1)
_PROBE_B = datetime(2004, 2, 2)
_DATEUTIL = parser()
# A year written with four digits below 100 ("Sat, 01 Jan 0001"): dateutil moves it to this
# century, which makes a placeholder look like a real date; it is kept as written (and then not
# believed: before 1990).
_SMALL_YEAR = re.compile(r"(?<![\d+\-:.])00(?!00)\d\d(?![\d:])")
# RFC 822 with its day, month name, four-digit year and time (dateutil's 00:00 fills missing
# seconds from either probe alike), as feeds write it after _parse's clean-up: zone names are
# upper case, "GMT+0800" is "+0800". Weekday and month names only: another word where the month
# stands would be read as something else, leaving the month to the probe.
_FULL_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d\d:\d\d(?::\d\d)? (?:[+-]\d{4}|CST|" + "|".join(_ZONE_OFFSETS) + ")"
)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LETTER = re.compile(r"[a-z]", re.I)
# What trips dateutil: RFC 822 comments and JavaScript's "(China Standard Time)"; "GMT+0800"
# (dropping the prefix leaves "+0800", read as feeds mean it); zone names not in upper case.
_COMMENT = re.compile(r"\([^)]*\)")
_GMT_PREFIX = re.compile(r"\b(?:GMT|UTC|UT)(?=\s*[+-]\d)", re.I)
_ZONE_NAME = re.compile(r"\b(?:CST|" + "|".join(_ZONE_OFFSETS) + r")\b", re.I)

# dateutil knows neither Chinese dates nor relative phrases, and its fuzzy mode finds "dates"
# in any text with a number, so these forms get regexes of their own.
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_CLOCK = (
    r"(?:[\sT]*(?P<ap>上午|下午)?\s*(?P<H>\d{1,2})\s*[:：时点]\s*(?P<M>\d{1,2})"
    r"(?:\s*[:：分]\s*(?P<S>\d{1,2}))?(?:\s*(?P<en_ap>[ap])\.?m\b\.?)?)?"
)
_ZH_YMD = re.compile(
    r"(?<!\d)(?P<y>\d{4})\s*[年/.-]\s*(?P<m>\d{1,2})\s*[月/.-]\s*(?P<d>\d{1,2})(?!\d)\s*[日号]?" + _CLOCK,
    re.I,
)
_ZH_MD = re.compile(r"(?<!\d)(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]" + _CLOCK, re.I)
_JUST_NOW = re.compile(r"刚刚|刚才|just now", re.I)
_AGO_UNITS = {
    "秒": 1, "分钟": 60, "小时": _HOUR, "天": 24 * _HOUR, "周": 7 * 24 * _HOUR,
    "sec": 1, "second": 1, "min": 60, "minute": 60, "hr": _HOUR, "hour": _HOUR,
    "day": 24 * _HOUR, "week": 7 * 24 * _HOUR,
}
_AGO = re.compile(
    r"(?<![\d.a-z])(?P<n>\d+|an?|one)\s*个?\s*"
    r"(?P<unit>分钟|小时|秒|天|周|second|sec|minute|min|hour|hr|day|week)s?\s*(?:前|ago\b)",
    re.I,
)
_DAYS_BACK = {"今天": 0, "today": 0, "昨天": 1, "yesterday": 1, "前天": 2}
_DAY_WORD = re.compile(r"(?P<word>今天|昨天|前天|today|yesterday)\s*(?:at\b)?" + _CLOCK, re.I)


@dataclass(frozen=True)
class ParsedDate:
    """One normalized date; ``value`` is None when the input carried no trustworthy instant."""

    value: datetime | None  # aware, tzinfo=timezone.utc, microsecond=0
    raw: str  # the input as a string ('' for None)
    how: str  # which rule matched (see the module docstring), or 'unknown' / 'untrusted:<why>'

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class _Context:
    """What a rule needs besides the text: the source's zone, its lying-GMT zone, the fetch time."""

    zone: tzinfo
    gmt_zone: tzinfo | None
    now: datetime

    def to_utc(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.zone)
        elif self.gmt_zone is not None and dt.utcoffset() == timedelta(0):
            dt = dt.replace(tzinfo=self.gmt_zone)
        return dt.astimezone(UTC).replace(microsecond=0)

    def with_year(self, wall: datetime) -> datetime | None:
        """``wall`` in the latest year that is at most one day after ``now`` (8 years hold a Feb 29)."""
        year = self.now.astimezone(self.zone).year
        for candidate_year in range(year + 1, year - 8, -1):
            try:
                candidate = self.to_utc(wall.replace(year=candidate_year))
            except ValueError:  # Feb 29 in a common year
                continue
            if candidate <= self.now + timedelta(days=1):
                return candidate
        return None

    def resolve_zone(self, name: str | None, offset: int | None) -> tzinfo | None:
        """dateutil's ``tzinfos`` hook: numeric offsets as written, known names, else no zone.

        A callable rather than a dict: with a dict, dateutil gives names it lacks the machine's
        local zone when they match ``time.tzname``.
        """
        if offset is not None:
            return timezone(timedelta(seconds=offset))
        if name == "CST":
            china = self.now.astimezone(self.zone).utcoffset() == timedelta(hours=8)
            return timezone(timedelta(hours=8 if china else -6))
        if name in _ZONE_OFFSETS:
            return timezone(timedelta(seconds=_ZONE_OFFSETS[name]))
        return None


def normalize_date(
    raw: str | int | float | None,
    tz: str | tzinfo | None = "UTC",
    now: datetime | None = None,
    gmt_is: str | None = None,
) -> ParsedDate:
    """Parse any date a source gives us. Never raises on ``raw`` (garbage, huge numbers, NUL chars).

    ``tz``: the source's zone for values without one. ``now``: the fetch time, for relative forms
    and missing years (naive means UTC). ``gmt_is``: the zone whose wall time a source labels
    GMT/UTC/Z/+0000; such stamps are read as wall time there.
    """
    text = "" if raw is None else str(raw)
    context = _Context(_zone(tz), _zone(gmt_is) if gmt_is else None, _aware_now(now))
    try:
        value, how = _parse(raw, text, context)
    except Exception:  # noqa: BLE001 - no input may break a crawl, whatever dateutil raises
        value, how = None, "unknown"
    return ParsedDate(value, text, how if value is not None else "unknown")


def parse_trusted(
    raw: str | int | float | None,
    tz: str | tzinfo | None = "UTC",
    now: datetime | None = None,
    gmt_is: str | None = None,
    *,
    not_before: datetime = datetime(1990, 1, 1, tzinfo=UTC),
    future_slack: timedelta = timedelta(days=1),
) -> ParsedDate:
    """``normalize_date``, but dates a post cannot have (future, or before ``not_before``) are unknown.

    Such values are placeholders (0, 1970, 9999) or misread fields; the fetch time is a better guess.
    """
    now = _aware_now(now)
    parsed = normalize_date(raw, tz, now, gmt_is)
    if parsed.value is None:
        return parsed
    if parsed.value > now + future_slack:
        why = "future"
    elif parsed.value < not_before:
        why = "too-old"
    else:
        return parsed
    return ParsedDate(None, parsed.raw, f"untrusted:{why}")


def format_date(value: datetime, style: str = "iso") -> str:
    """``iso``: ``2022-04-29T00:12:15Z``; ``rfc1123``: ``Fri, 29 Apr 2022 00:12:15 GMT``. Naive means UTC."""
    utc = (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).replace(microsecond=0)
    if style == "iso":
        return utc.replace(tzinfo=None).isoformat() + "Z"
    if style == "rfc1123":
        return format_datetime(utc, usegmt=True)
    raise ValueError(f"unknown date style {style!r}")


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return UTC
    return tz if isinstance(tz, tzinfo) else ZoneInfo(tz)


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _parse(raw: object, text: str, context: _Context) -> tuple[datetime | None, str]:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return _epoch(raw), "epoch"
    text = text.strip()
    if not text or len(text) > _MAX_LEN:
        return None, "unknown"
    if _NUMBER.fullmatch(text) and (value := _epoch(float(text))):
        return value, "epoch"
    text = _GMT_PREFIX.sub("", _COMMENT.sub(" ", text))
    text = _ZONE_NAME.sub(lambda zone: zone[0].upper(), text).strip()
    for rule in (_iso, _dateutil, _zh_absolute, _relative):
        if found := rule(text, context):
            return found
    return None, "unknown"


def _epoch(seconds: float) -> datetime | None:
    if 1e11 <= seconds < 1e13:
        seconds //= 1000
    elif not 1e8 <= seconds < 1e10:  # also NaN
        return None
    return datetime.fromtimestamp(int(seconds), UTC)


def _iso(text: str, context: _Context) -> tuple[datetime, str] | None:
    try:
        dt = isoparse(text)
    except (ValueError, OverflowError):
        return None
    return context.to_utc(dt), "iso8601"


def _dateutil(text: str, context: _Context) -> tuple[datetime | None, str] | None:
    try:
        a = _DATEUTIL.parse(text, default=_PROBE_A, tzinfos=context.resolve_zone)
        # A date that writes every field leaves the default nothing to fill: the second probe is
        # the first again (half of what most RSS dates cost).
        b = a if _FULL_RFC822.fullmatch(text) else _DATEUTIL.parse(text, default=_PROBE_B,
                                                                    tzinfos=context.resolve_zone)
    except (ValueError, OverflowError):
        return None
    how = "rfc822" if a.tzinfo else "english" if _LETTER.search(text) else "naive"
    if (small := _SMALL_YEAR.search(text)) and a.year % 100 == int(small[0]) and a.year == b.year:
        a = b = a.replace(year=int(small[0]))
    if a.year == b.year:
        return context.to_utc(a), how
    if (a.month, a.day) != (b.month, b.day):
        return None  # a time or weekday, but no date
    return context.with_year(a), how


def _zh_absolute(text: str, context: _Context) -> tuple[datetime | None, str] | None:
    if not _CJK.search(text):
        return None
    if match := _ZH_YMD.search(text):
        wall = datetime.combine(_date_of(match, int(match["y"])), _clock(match))
        return context.to_utc(wall), "zh-absolute"
    if match := _ZH_MD.search(text):
        wall = datetime.combine(_date_of(match, _PROBE_A.year), _clock(match))
        return context.with_year(wall), "zh-absolute"
    return None


def _relative(text: str, context: _Context) -> tuple[datetime, str] | None:
    now = context.now.astimezone(UTC).replace(microsecond=0)
    if _JUST_NOW.search(text):
        return now, "relative"
    if match := _AGO.search(text):
        count = int(match["n"]) if match["n"].isdigit() else 1
        return now - timedelta(seconds=count * _AGO_UNITS[match["unit"].lower()]), "relative"
    if match := _DAY_WORD.search(text):
        day = context.now.astimezone(context.zone).date() - timedelta(days=_DAYS_BACK[match["word"].lower()])
        return context.to_utc(datetime.combine(day, _clock(match))), "relative"
    return None


def _date_of(match: re.Match[str], year: int) -> date:
    return date(year, int(match["m"]), int(match["d"]))


def _clock(match: re.Match[str]) -> time:
    """The optional time of a regex match, 12-hour forms (下午3:20, 3:20 pm) made 24-hour."""
    if match["H"] is None:
        return time()
    hour, meridiem = int(match["H"]), (match["ap"] or match["en_ap"] or "").lower()
    if meridiem and hour <= 12:
        hour = hour % 12 + (12 if meridiem in ("下午", "p") else 0)
    return time(hour, int(match["M"]), int(match["S"] or 0))
