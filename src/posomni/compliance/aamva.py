"""AAMVA DL/ID (PDF417) barcode parser: the raw text a 2D scanner emits in, typed card data out.

Pure: no I/O. Written for the mess real keyboard-wedge scanners and real cards produce (see the domain guide,
section 1), so it locates things by content where the declared layout cannot be trusted. Every regular
expression here is a fixed-width pattern or a literal scan, so the run time stays linear in the input length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Final, Literal

IdParseErrorCode = Literal["not_an_id_barcode", "truncated", "missing_date_of_birth", "invalid_date"]
Subfile = Literal["DL", "ID", "EN"]
DocumentType = Literal["driver_license", "id_card", "enhanced_license"]
Sex = Literal["M", "F", "X"]


class IdParseError(ValueError):
    """The input is not a usable ID barcode; `code` is stable and machine-readable."""

    def __init__(self, code: IdParseErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: IdParseErrorCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AamvaId:
    subfile: Subfile
    document_type: DocumentType
    iin: str
    jurisdiction: str | None
    version: int
    jurisdiction_version: int | None
    first: str | None
    middle: str | None
    last: str | None
    suffix: str | None
    full_name: str | None
    document_number: str | None
    dob: date
    expires: date | None
    issued: date | None
    country: str | None
    under_18_until: date | None
    under_19_until: date | None
    under_21_until: date | None
    sex: Sex | None
    compliance_type: str | None


# Provinces and territories.
CANADIAN_JURISDICTIONS: Final = frozenset(
    {
        "AB",
        "BC",
        "MB",
        "NB",
        "NL",
        "NS",
        "NT",
        "NU",
        "ON",
        "PE",
        "QC",
        "SK",
        "YT",
    }
)

# Issuer identification numbers from the public AAMVA IIN list (US states, DC, territories, Canada).
IIN_JURISDICTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "636000": "VA",
        "636001": "NY",
        "636002": "MA",
        "636003": "MD",
        "636004": "NC",
        "636005": "SC",
        "636006": "CT",
        "636007": "LA",
        "636008": "MT",
        "636009": "NM",
        "636010": "FL",
        "636011": "DE",
        "636012": "ON",
        "636013": "NS",
        "636014": "CA",
        "636015": "TX",
        "636016": "NL",
        "636017": "NB",
        "636018": "IA",
        "636019": "GU",
        "636020": "CO",
        "636021": "AR",
        "636022": "KS",
        "636023": "OH",
        "636024": "VT",
        "636025": "PA",
        "636026": "AZ",
        "636028": "BC",
        "636029": "OR",
        "636030": "MO",
        "636031": "WI",
        "636032": "MI",
        "636033": "AL",
        "636034": "ND",
        "636035": "IL",
        "636036": "NJ",
        "636037": "IN",
        "636038": "MN",
        "636039": "NH",
        "636040": "UT",
        "636041": "ME",
        "636042": "SD",
        "636043": "DC",
        "636044": "SK",
        "636045": "WA",
        "636046": "KY",
        "636047": "HI",
        "636048": "MB",
        "636049": "NV",
        "636050": "ID",
        "636051": "MS",
        "636052": "RI",
        "636053": "TN",
        "636054": "NE",
        "636055": "GA",
        "636058": "OK",
        "636059": "AK",
        "636060": "WY",
        "636061": "WV",
        "636062": "VI",
        "604426": "PE",
        "604427": "AS",
        "604428": "QC",
        "604429": "YT",
        "604430": "MP",
        "604431": "PR",
        "604432": "AB",
        "604433": "NU",
        "604434": "NT",
        # Older Alberta cards carry this non-ISO issuer number.
        "990876": "AB",
    }
)

# The 50 states, DC and the inhabited territories: every issuer above that is not Canadian.
US_JURISDICTIONS: Final = frozenset(IIN_JURISDICTIONS.values()) - CANADIAN_JURISDICTIONS


def iin_jurisdiction(iin: str) -> str | None:
    return IIN_JURISDICTIONS.get(iin)


_DOCUMENT_TYPES: Final[Mapping[str, DocumentType]] = MappingProxyType(
    {"DL": "driver_license", "ID": "id_card", "EN": "enhanced_license"}
)
_SUBFILE_TYPES: Final = ("DL", "ID", "EN")
# The canonical preamble is "@" LF RS CR (4 characters) and subfile offsets count from the "@". Scanners
# add, drop or double those control characters, so offsets are measured from the file type instead.
_PREAMBLE_LENGTH: Final = 4
_MARKER: Final = re.compile(r"(?:ANSI|AAMVA) ?")
# CR may arrive as LF or CRLF and LF as "|"; the other separators never occur inside standard values.
_SEPARATOR: Final = re.compile(r"\r\n|[\r\n|\x1c\x1d\x1e]")
_SUBFILE_START: Final = re.compile(r"(DL|ID|EN)(?:\r\n|[\r\n|]){0,2}D[A-Z]{2}")
_ASCII_UPPER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_DIGITS: Final = frozenset("0123456789")
_SEPARATOR_CHARS: Final = frozenset("\r\n|\x1c\x1d\x1e")
_EMPTY_VALUES: Final = frozenset({"", "NONE", "UNAVL", "UNAVAIL"})
# Suffixes a name part can be recognised as. Single letters (I, V, X) are left out: they are middle initials
# far more often than suffixes.
_NAME_SUFFIXES: Final = frozenset(
    {"JR", "SR", "II", "III", "IV", "1ST", "2ND", "3RD", "4TH", "5TH", "6TH", "7TH", "8TH", "9TH"}
)
# Wide enough for any living holder's birth date and any card's expiry, narrow enough that MMDDCCYY and
# CCYYMMDD can never both read as a real date (a month 01-12 read as a century gives a year before 1300).
_MIN_YEAR: Final = 1900
_MAX_YEAR: Final = 2199
_MAX_DESIGNATORS: Final = 16


def _is_digits(s: str) -> bool:
    # str.isdigit() accepts non-ASCII digits such as "²" that int() then rejects.
    return bool(s) and all(c in _ASCII_DIGITS for c in s)


def _is_element_id(s: str) -> bool:
    return len(s) == 3 and s[0] == "D" and s[1] in _ASCII_UPPER and s[2] in _ASCII_UPPER


@dataclass(frozen=True, slots=True)
class _Designator:
    type: str
    offset: int | None
    length: int | None


@dataclass(frozen=True, slots=True)
class _Header:
    base: int
    iin: str
    version: int
    jurisdiction_version: int | None
    designators: tuple[_Designator, ...]
    # Where the header's digits end and where its subfile designators end.
    digits_end: int
    end: int
    cut: bool


def _to_text(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray):
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            # Bytes 0x80-0x9F before "@" are common scanner noise; latin-1 maps every byte to a character.
            return bytes(raw).decode("latin-1")
    raise IdParseError("not_an_id_barcode", "expected the scanner's text")


def _looks_like_cut_preamble(text: str) -> bool:
    at = text.rfind("@")
    if at < 0:
        return False
    tail = text[at + 1 :].lstrip("\r\n\x1e|")
    return len(tail) < 5 and ("ANSI".startswith(tail) or "AAMVA".startswith(tail))


def _read_designators(text: str, pos: int, entries: int) -> tuple[tuple[_Designator, ...], int, bool]:
    designators: list[_Designator] = []
    # With a believable entry count we trust it and accept odd offsets (Alberta writes letters there); with
    # none we read only well-formed designators, else the subfile's own "DLDAQ…" would be taken for one.
    trusted = 0 < entries <= _MAX_DESIGNATORS
    limit = entries if trusted else _MAX_DESIGNATORS
    while len(designators) < limit:
        chunk = text[pos : pos + 10]
        if len(chunk) < 10:
            return tuple(designators), pos, True
        kind, offset, length = chunk[:2], chunk[2:6], chunk[6:]
        if kind[0] not in _ASCII_UPPER or not (kind[1] in _ASCII_UPPER or kind[1] in _ASCII_DIGITS):
            break
        if any(c in _SEPARATOR_CHARS for c in chunk):
            break
        if not trusted and not (_is_digits(offset) and _is_digits(length)):
            break
        designators.append(
            _Designator(
                kind,
                int(offset) if _is_digits(offset) else None,
                int(length) if _is_digits(length) else None,
            )
        )
        pos += 10
    return tuple(designators), pos, False


def _read_header(text: str) -> _Header:
    cut = False
    for match in _MARKER.finditer(text):
        pos = match.end()
        iin = text[pos : pos + 6]
        if len(iin) < 6 and (not iin or _is_digits(iin)):
            cut = True
            continue
        if not _is_digits(iin):
            continue
        pos += 6
        run = 0
        while run < 6 and pos + run < len(text) and text[pos + run] in _ASCII_DIGITS:
            run += 1
        if run < 4:
            cut = cut or pos + run == len(text)
            continue
        version = int(text[pos : pos + 2])
        if run >= 6:
            # Version 02 onwards: version, jurisdiction version, number of entries.
            jurisdiction_version: int | None = int(text[pos + 2 : pos + 4])
            entries = int(text[pos + 4 : pos + 6])
            pos += 6
        else:
            # Version 01 (DL/ID-2000) has no jurisdiction version.
            jurisdiction_version = None
            entries = int(text[pos + 2 : pos + 4])
            pos += 4
        digits_end = pos
        designators, end, designators_cut = _read_designators(text, pos, entries)
        return _Header(
            base=match.start() - _PREAMBLE_LENGTH,
            iin=iin,
            version=version,
            jurisdiction_version=jurisdiction_version,
            designators=designators,
            digits_end=digits_end,
            end=end,
            cut=designators_cut,
        )
    if cut or _looks_like_cut_preamble(text):
        raise IdParseError("truncated", "the barcode ends inside its header")
    raise IdParseError("not_an_id_barcode", "no AAMVA DL/ID header found")


def _body_at(text: str, pos: int, kind: str, header_end: int) -> int | None:
    """Where the subfile's first element is, if a subfile of type `kind` starts at `pos`."""
    if pos < 0:
        return None
    if text[pos : pos + 2] == kind:
        if _is_element_id(text[pos + 2 : pos + 5]):
            return pos + 2
        # Some cards put a separator between the subfile type and its first element.
        if _SUBFILE_START.match(text, pos) is not None:
            return pos + 2
    # Some version-01 cards leave the type out and start with the first element right after the header;
    # anywhere else a bare element id is more likely a wrong offset landing mid-subfile.
    if pos == header_end and _is_element_id(text[pos : pos + 3]):
        return pos
    return None


def _locate_subfile(text: str, header: _Header) -> tuple[Subfile, int, int | None]:
    """The subfile's type, where its first element starts and where its declared length says it ends."""
    wanted = [d for d in header.designators if d.type in _SUBFILE_TYPES]
    for designator in wanted:
        if designator.offset:
            start = header.base + designator.offset
            body = _body_at(text, start, designator.type, header.end)
            if body is not None:
                end = start + designator.length if designator.length else None
                return _as_subfile(designator.type), body, end
    # Offsets are useless (Ontario writes 0000, Alberta letters, others are off by a byte or count CRs a
    # scanner dropped): find the subfile by its content, "DL"/"ID"/"EN" followed by an element id. The
    # search starts where the header's digits end, as a malformed designator can overlap the subfile
    # itself; a well-formed designator (type, then digits) never matches.
    searched: set[str] = set()
    for designator in wanted:
        if designator.type in searched:
            continue
        searched.add(designator.type)
        found = text.find(designator.type, header.digits_end)
        while found >= 0:
            body = _body_at(text, found, designator.type, -1)
            if body is not None:
                end = found + designator.length if designator.length else None
                return _as_subfile(designator.type), body, end
            found = text.find(designator.type, found + 1)
    if wanted and _is_element_id(text[header.end : header.end + 3]):
        return _as_subfile(wanted[0].type), header.end, None
    match = _SUBFILE_START.search(text, header.digits_end)
    if match is not None:
        return _as_subfile(match.group(1)), match.start() + 2, None
    # The declared extent is only a hint here, but it is the best one for telling a cut scan from junk.
    beyond_end = any(header.base + (d.offset or 0) + (d.length or 0) > len(text) for d in wanted)
    if header.cut or beyond_end or len(text) - header.end < 5:
        raise IdParseError("truncated", "the barcode ends before its DL/ID subfile")
    raise IdParseError("not_an_id_barcode", "no DL, ID or EN subfile found")


def _as_subfile(kind: str) -> Subfile:
    if kind == "ID":
        return "ID"
    if kind == "EN":
        return "EN"
    return "DL"


def _pieces(text: str, start: int) -> Iterator[tuple[str, bool]]:
    """Lines from `start`, each with whether a separator ended it (the last one may have been cut)."""
    pos = start
    for match in _SEPARATOR.finditer(text, start):
        yield text[pos : match.start()], True
        pos = match.end()
    yield text[pos:], False


def _starts_next_subfile(piece: str) -> bool:
    if len(piece) < 5:
        return False
    if piece[:2] in _SUBFILE_TYPES and _is_element_id(piece[2:5]):
        return True
    # A jurisdiction subfile opens with its type repeated as the first element's prefix: "ZVZVA…".
    return piece[0] == "Z" and piece[:2] == piece[2:4]


@dataclass(slots=True)
class _Elements:
    values: dict[str, str]
    unterminated_id: str | None
    cut: bool


def _read_elements(text: str, start: int, declared_end: int | None) -> _Elements:
    # The slack of one character allows for the final CR that many scanners drop.
    short = declared_end is not None and len(text) < declared_end - 1
    values: dict[str, str] = {}
    unterminated_id: str | None = None
    cut = False
    first = True
    for piece, terminated in _pieces(text, start):
        if not first and _starts_next_subfile(piece):
            return _Elements(values, unterminated_id, cut=False)
        first = False
        element_id = piece[:3]
        if not terminated:
            # The input ended inside this element: its value may be partial.
            cut = short or bool(piece)
            if not _is_element_id(element_id) or short or not piece[3:].strip():
                continue
            unterminated_id = element_id
        if _is_element_id(element_id):
            # Jurisdictions repeat nothing in a valid subfile; the first occurrence wins over trailing junk.
            values.setdefault(element_id, piece[3:])
    return _Elements(values, unterminated_id, cut)


def _value(elements: Mapping[str, str], element_id: str) -> str | None:
    raw = elements.get(element_id)
    if raw is None:
        return None
    value = raw.strip()
    return None if value.upper() in _EMPTY_VALUES else value


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    # Ontario pads family names as "TESTER,"; v01 cards put a space after each comma.
    cleaned = value.strip(" ,$").strip()
    return None if cleaned.upper() in _EMPTY_VALUES else cleaned


def _is_suffix(token: str) -> bool:
    return "".join(c for c in token if c.isalnum()).upper() in _NAME_SUFFIXES


class _BadDateError(Exception):
    pass


def _parse_date(value: str | None, prefer_ymd: bool) -> date | None:
    if value is None:
        return None
    if _is_digits(value[:8]) and not any(c in _ASCII_DIGITS for c in value[8:]):
        # New Hampshire has been seen appending a letter to its dates ("11061977M").
        digits = value[:8]
    else:
        digits = "".join(c for c in value if c not in "-/. ")
    if len(digits) != 8 or not _is_digits(digits):
        raise _BadDateError
    if digits == "00000000":
        return None
    ymd = (int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    mdy = (int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    # US cards write MMDDCCYY, Canadian and version-01 cards CCYYMMDD, and some cards break their own
    # rule: the preferred order is tried first, and only a real calendar date in a plausible year counts.
    for year, month, day in (ymd, mdy) if prefer_ymd else (mdy, ymd):
        if _MIN_YEAR <= year <= _MAX_YEAR:
            try:
                return date(year, month, day)
            except ValueError:
                continue
    raise _BadDateError


def _sex(value: str | None) -> Sex | None:
    code = (value or "").upper()
    if code in ("1", "M"):
        return "M"
    if code in ("2", "F"):
        return "F"
    # AAMVA's 9 means "not specified"; newer cards print X.
    if code in ("9", "X"):
        return "X"
    return None


def _jurisdiction(elements: Mapping[str, str], iin: str) -> str | None:
    daj = (_value(elements, "DAJ") or "").upper()
    if daj in US_JURISDICTIONS or daj in CANADIAN_JURISDICTIONS:
        return daj
    return iin_jurisdiction(iin)


def _country(elements: Mapping[str, str]) -> str | None:
    country = _value(elements, "DCG")
    if country is None:
        return None
    country = country.upper()
    # Some Canadian cards write the vehicle-registration code CDN instead of ISO 3166 CAN.
    return "CAN" if country == "CDN" else country


@dataclass(frozen=True, slots=True)
class _Names:
    first: str | None
    middle: str | None
    last: str | None
    suffix: str | None
    full_name: str | None


def _split_full_name(full_name: str) -> _Names:
    """DAA: LAST,FIRST,MIDDLE[,SUFFIX] (also with "$" or "@"), or, on some cards, FIRST MIDDLE LAST."""
    parts = re.split(r"[,$@]", full_name)
    if len(parts) > 1:
        last: str | None = parts[0]
        # Some jurisdictions separate first and middle names with a space instead of a comma.
        tokens = " ".join(parts[1:]).split()
        suffix = tokens.pop() if len(tokens) > 1 and _is_suffix(tokens[-1]) else None
    else:
        tokens = full_name.split()
        suffix = tokens.pop() if len(tokens) > 2 and _is_suffix(tokens[-1]) else None
        last = tokens.pop() if len(tokens) > 1 else None
    return _Names(
        first=_name(tokens[0]) if tokens else None,
        middle=_name(" ".join(tokens[1:])),
        last=_name(last),
        suffix=_name(suffix),
        full_name=full_name,
    )


def _names(elements: Mapping[str, str]) -> _Names:
    last = _name(_value(elements, "DCS")) or _name(_value(elements, "DAB"))
    first = _name(_value(elements, "DAC"))
    middle = _name(_value(elements, "DAD"))
    suffix = _name(_value(elements, "DCU")) or _name(_value(elements, "DAE"))
    if first is not None and middle is None and " " in first:
        # First names hold no spaces (AAMVA person-name rule); Wyoming puts the middle initial there.
        first, _, rest = first.rpartition(" ")
        first, middle = first.strip(), _name(rest)
    given = _value(elements, "DCT")
    if given is not None and first is None:
        # Versions 02-03 put all given names in DCT: "MARY,ANN" or "MARY ANN".
        tokens = re.split(r"[,$\s]+", given.strip(" ,$"))
        first = _name(tokens[0])
        middle = middle or _name(" ".join(tokens[1:]))
    full_name = _value(elements, "DAA")
    if full_name is None:
        return _Names(first=first, middle=middle, last=last, suffix=suffix, full_name=None)
    # Version 01 writes the whole name in DAA; separate elements, where a card has them, win.
    split = _split_full_name(full_name)
    return _Names(
        first=first or split.first,
        middle=middle or split.middle,
        last=last or split.last,
        suffix=suffix or split.suffix,
        full_name=full_name,
    )


def parse_aamva(raw: str | bytes) -> AamvaId:
    """Parse scanner output; raise IdParseError, and nothing else, when it is not a usable ID barcode."""
    text = _to_text(raw)
    header = _read_header(text)
    subfile, start, declared_end = _locate_subfile(text, header)
    read = _read_elements(text, start, declared_end)
    elements = read.values

    jurisdiction = _jurisdiction(elements, header.iin)
    country = _country(elements)
    prefer_ymd = header.version <= 1 or country == "CAN" or jurisdiction in CANADIAN_JURISDICTIONS

    def card_date(element_id: str) -> date | None:
        try:
            return _parse_date(_value(elements, element_id), prefer_ymd)
        except _BadDateError:
            if element_id == read.unterminated_id:
                raise IdParseError("truncated", f"the barcode ends inside {element_id}") from None
            raise IdParseError("invalid_date", f"{element_id} is not a real date") from None

    def cross_check_date(element_id: str) -> date | None:
        # Under-18/19/21 dates only cross-check the birth date, so an unreadable one is dropped, not fatal.
        try:
            return _parse_date(_value(elements, element_id), prefer_ymd)
        except _BadDateError:
            return None

    dob = card_date("DBB")
    if dob is None:
        if read.cut:
            raise IdParseError("truncated", "the barcode ends before the date of birth")
        raise IdParseError("missing_date_of_birth", "the barcode has no date of birth (DBB)")
    names = _names(elements)
    return AamvaId(
        subfile=subfile,
        document_type=_DOCUMENT_TYPES[subfile],
        iin=header.iin,
        jurisdiction=jurisdiction,
        version=header.version,
        jurisdiction_version=header.jurisdiction_version,
        first=names.first,
        middle=names.middle,
        last=names.last,
        suffix=names.suffix,
        full_name=names.full_name,
        document_number=_value(elements, "DAQ"),
        dob=dob,
        expires=card_date("DBA"),
        issued=card_date("DBD"),
        country=country,
        under_18_until=cross_check_date("DDH"),
        under_19_until=cross_check_date("DDI"),
        under_21_until=cross_check_date("DDJ"),
        sex=_sex(_value(elements, "DBC")),
        compliance_type=_value(elements, "DDA"),
    )
