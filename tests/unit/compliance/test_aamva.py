from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posomni.compliance.aamva import (
    CANADIAN_JURISDICTIONS,
    IIN_JURISDICTIONS,
    US_JURISDICTIONS,
    AamvaId,
    IdParseError,
    iin_jurisdiction,
    parse_aamva,
)

DATA = Path(__file__).parent.parent.parent / "data" / "aamva"
EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
# Byte for byte: read_text() would turn the CRs into LFs and hide half of what the parser must cope with.
SAMPLES: dict[str, str] = {
    name: (DATA / case["file"]).read_bytes().decode("latin-1") for name, case in EXPECTED.items()
}
SAMPLE_NAMES = sorted(SAMPLES)

# The parser's plausible-year window: a parsed date outside it would be a bug.
MIN_YEAR, MAX_YEAR = 1900, 2199
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_expected_json(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def build_card(
    elements: list[str],
    *,
    iin: str = "636010",
    version: int = 10,
    jurisdiction_version: int = 1,
    subfile: str = "DL",
    file_type: str = "ANSI ",
    jurisdiction_subfile: str | None = "ZFZFA1",
) -> str:
    """A well-formed barcode with correct offsets, as a conforming card would carry it."""
    parts = [(subfile, subfile + "\n".join(elements) + "\r")]
    if jurisdiction_subfile is not None:
        parts.append((jurisdiction_subfile[:2], jurisdiction_subfile + "\r"))
    header = "@\n\x1e\r" + file_type + iin + f"{version:02d}"
    if version > 1:
        header += f"{jurisdiction_version:02d}"
    header += f"{len(parts):02d}"
    offset = len(header) + 10 * len(parts)
    designators = ""
    for kind, content in parts:
        designators += f"{kind}{offset:04d}{len(content):04d}"
        offset += len(content)
    return header + designators + "".join(content for _, content in parts)


BASIC = [
    "DAQD1234567",
    "DCSDOE",
    "DACJANE",
    "DADNONE",
    "DBD03012022",
    "DBB01152000",
    "DBA01152030",
    "DBC2",
    "DAJFL",
    "DCGUSA",
    "DDAF",
]


def replace_element(elements: list[str], element_id: str, value: str | None) -> list[str]:
    kept = [e for e in elements if not e.startswith(element_id)]
    return kept if value is None else [*kept, element_id + value]


ERROR_CODES = {"not_an_id_barcode", "truncated", "missing_date_of_birth", "invalid_date"}


def assert_only_id_parse_error(raw: str | bytes) -> AamvaId | None:
    """Parse, letting through nothing but IdParseError with a known code (any other exception fails)."""
    code = None
    try:
        return parse_aamva(raw)
    except IdParseError as error:
        code = error.code
    assert code in ERROR_CODES
    return None


# --- golden samples -----------------------------------------------------------------------------------


def test_sample_copies_keep_their_attribution() -> None:
    assert "attribution" in (DATA / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_parses_to_every_expected_field(name: str) -> None:
    card = parse_aamva(SAMPLES[name])

    for field, expected in EXPECTED[name]["expected"].items():
        assert as_expected_json(getattr(card, field)) == expected, field


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_parses_the_same_from_bytes_as_from_text(name: str) -> None:
    raw = (DATA / EXPECTED[name]["file"]).read_bytes()

    assert parse_aamva(raw) == parse_aamva(SAMPLES[name])


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_read_with_universal_newlines_still_parses(name: str) -> None:
    text = (DATA / EXPECTED[name]["file"]).read_text(encoding="latin-1")

    assert parse_aamva(text) == parse_aamva(SAMPLES[name])


def test_v10_card_reports_header_and_document_details() -> None:
    card = parse_aamva(SAMPLES["s1"])

    assert card.subfile == "DL"
    assert card.document_type == "driver_license"
    assert card.jurisdiction_version == 0
    assert card.sex == "M"
    assert card.compliance_type == "F"
    assert card.full_name is None


def test_v01_full_name_is_split_into_parts() -> None:
    card = parse_aamva(SAMPLES["s2"])

    assert card.full_name == "PUBLIC,JOHN,Q"
    assert (card.last, card.first, card.middle, card.suffix) == ("PUBLIC", "JOHN", "Q", None)
    assert card.jurisdiction_version is None


def test_ontario_given_names_and_padded_family_name_are_cleaned() -> None:
    card = parse_aamva(SAMPLES["s12"])

    assert (card.last, card.first, card.middle) == ("TESTER", "MARY", "ANN")
    assert card.sex == "F"


def test_blank_suffix_and_none_middle_name_are_none() -> None:
    assert parse_aamva(SAMPLES["s13"]).suffix is None
    assert parse_aamva(SAMPLES["s5"]).middle is None


# --- scanner mess -------------------------------------------------------------------------------------

VARIANTS = {
    "cr_as_lf": lambda raw: raw.replace("\r", "\n"),
    "cr_as_crlf": lambda raw: raw.replace("\r", "\r\n"),
    "every_break_as_crlf": lambda raw: raw.replace("\r", "\n").replace("\n", "\r\n"),
    "lf_as_pipe": lambda raw: raw.replace("\n", "|"),
    "lf_and_cr_as_pipe": lambda raw: raw.replace("\r", "\n").replace("\n", "|"),
    "missing_rs": lambda raw: raw.replace("\x1e", ""),
    "c1_bytes_before_at": lambda raw: "\x80\x85\x9f\x9b" + raw,
    "junk_before_at": lambda raw: "]L2 scanner says hi @@ \t" + raw,
    "aim_prefix_and_bom": lambda raw: "\ufeff]L0" + raw,
    "header_with_crlf": lambda raw: "@\r\n\x1e\r\n" + raw[4:],
    "no_final_terminator": lambda raw: raw.rstrip("\r\n"),
    "trailing_whitespace": lambda raw: raw + "\r\n  \r\n",
    "junk_after_the_barcode": lambda raw: raw + "\x00\x01 trailing noise DBB01011999\n",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_scanner_mangling_does_not_change_the_result(name: str, variant: str) -> None:
    raw = SAMPLES[name]

    assert parse_aamva(VARIANTS[variant](raw)) == parse_aamva(raw)


@pytest.mark.parametrize("offset", ["0000", "9999", "0001", "0040"])
def test_subfile_is_found_by_content_when_the_declared_offset_is_wrong(offset: str) -> None:
    raw = SAMPLES["s1"]
    broken = raw.replace("DL00410278", f"DL{offset}0278", 1)
    assert broken != raw

    assert parse_aamva(broken) == parse_aamva(raw)


def test_non_numeric_offsets_are_tolerated() -> None:
    # Alberta has been seen writing letters where the offset belongs.
    raw = build_card(BASIC, iin="604432")
    broken = raw.replace(raw[raw.index("DL", 20) : raw.index("DL", 20) + 10], "DLabac0000", 1)

    assert parse_aamva(broken).dob == date(2000, 1, 15)


def test_jurisdiction_subfile_running_past_the_end_is_ignored() -> None:
    raw = build_card(BASIC)
    broken = raw.replace(raw[raw.index("ZF") : raw.index("ZF") + 10], "ZF09990999", 1)

    assert parse_aamva(broken).dob == date(2000, 1, 15)


def test_old_aamva_file_type_is_accepted() -> None:
    raw = SAMPLES["s2"].replace("ANSI ", "AAMVA", 1)

    card = parse_aamva(raw)

    assert card.version == 1
    assert card.dob == date(1976, 11, 23)


def test_space_padded_values_are_stripped() -> None:
    padded = [element + "     " for element in BASIC]

    card = parse_aamva(build_card(padded))

    assert card.document_number == "D1234567"
    assert card.last == "DOE"
    assert card.dob == date(2000, 1, 15)
    assert card.jurisdiction == "FL"


def test_subfile_without_its_type_letters_is_read_from_the_declared_offset() -> None:
    # Some version-01 cards start the subfile straight with its first element.
    raw = build_card(["DAQ990000001", "DAACTLIC,ADULT,A", "DBB19610101"], version=1, file_type="AAMVA")

    card = parse_aamva(raw.replace("DLDAQ", "DAQ", 1))

    assert card.document_number == "990000001"
    assert card.dob == date(1961, 1, 1)


def test_designator_with_letters_overlapping_the_subfile_is_tolerated() -> None:
    # Seen on Alberta cards: "DLabac" where offset and length belong, then the subfile at once.
    raw = "@\n\x1e\rANSI 990876030001DLabacDLDCSMOTORIST\nDACMARY\nDAJAB\nDBB19930204\nDBA20190108\n"

    card = parse_aamva(raw)

    assert (card.jurisdiction, card.last, card.dob) == ("AB", "MOTORIST", date(1993, 2, 4))


@pytest.mark.parametrize("preamble", ["@a\n", "@ac", "@\n6", "@\n", "@", "", "@\r\n\x1e\r\n\r\n"])
def test_mangled_preamble_before_the_file_type_is_tolerated(preamble: str) -> None:
    raw = build_card(BASIC)

    assert parse_aamva(preamble + raw[4:]) == parse_aamva(raw)


def test_separator_between_subfile_type_and_first_element_is_tolerated() -> None:
    raw = build_card(BASIC).replace("DLDAQ", "DL\nDAQ", 1)

    assert parse_aamva(raw).document_number == "D1234567"


def test_the_first_occurrence_of_an_element_wins() -> None:
    card = parse_aamva(build_card([*BASIC, "DBB01011950"]))

    assert card.dob == date(2000, 1, 15)


# --- dates --------------------------------------------------------------------------------------------


def test_us_card_dates_are_read_month_first() -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DBB", "02031999")))

    assert card.dob == date(1999, 2, 3)


def test_canadian_card_dates_are_read_year_first() -> None:
    elements = replace_element(replace_element(BASIC, "DCG", "CAN"), "DAJ", "ON")
    elements = replace_element(elements, "DBB", "19990203")

    card = parse_aamva(build_card(elements, iin="636012", version=3))

    assert card.dob == date(1999, 2, 3)
    assert card.country == "CAN"


def test_canadian_country_code_cdn_is_reported_as_can() -> None:
    elements = replace_element(BASIC, "DCG", "CDN")

    assert parse_aamva(build_card(elements)).country == "CAN"


def test_v01_card_that_writes_month_first_is_still_read_correctly() -> None:
    elements = ["DAQ123", "DAASMITH,JOHN", "DBB07041976", "DBA20300704", "DBD20200704"]

    card = parse_aamva(build_card(elements, version=1))

    assert card.dob == date(1976, 7, 4)
    assert card.expires == date(2030, 7, 4)


def test_a_letter_appended_to_a_date_is_ignored() -> None:
    # New Hampshire has been seen writing "11061977M".
    card = parse_aamva(build_card(replace_element(BASIC, "DBB", "11061977M")))

    assert card.dob == date(1977, 11, 6)


def test_us_card_that_writes_year_first_is_still_read_correctly() -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DBB", "19760704")))

    assert card.dob == date(1976, 7, 4)


@pytest.mark.parametrize(
    "value",
    ["02302000", "13012000", "00152000", "20001301", "0115200", "011520000", "O1152000"],
)
def test_a_birth_date_that_is_not_a_real_calendar_date_is_refused(value: str) -> None:
    with pytest.raises(IdParseError) as raised:
        parse_aamva(build_card(replace_element(BASIC, "DBB", value)))

    assert raised.value.code == "invalid_date"


def test_an_unreadable_expiry_is_refused_not_ignored() -> None:
    with pytest.raises(IdParseError) as raised:
        parse_aamva(build_card(replace_element(BASIC, "DBA", "99999999")))

    assert raised.value.code == "invalid_date"


@pytest.mark.parametrize("value", [None, "NONE", "", "   ", "00000000"])
def test_missing_birth_date_is_refused(value: str | None) -> None:
    with pytest.raises(IdParseError) as raised:
        parse_aamva(build_card(replace_element(BASIC, "DBB", value)))

    assert raised.value.code == "missing_date_of_birth"


@pytest.mark.parametrize("value", ["NONE", "", "none  "])
def test_none_expiry_and_issue_dates_are_none(value: str) -> None:
    elements = replace_element(replace_element(BASIC, "DBA", value), "DBD", value)

    card = parse_aamva(build_card(elements))

    assert card.expires is None
    assert card.issued is None


def test_under_age_dates_are_parsed_when_present() -> None:
    elements = [*BASIC, "DDH01152018", "DDI01152019", "DDJ01152021"]

    card = parse_aamva(build_card(elements))

    assert card.under_18_until == date(2018, 1, 15)
    assert card.under_19_until == date(2019, 1, 15)
    assert card.under_21_until == date(2021, 1, 15)


def test_an_unreadable_under_21_date_is_dropped_because_it_only_cross_checks() -> None:
    card = parse_aamva(build_card([*BASIC, "DDJ99999999"]))

    assert card.under_21_until is None
    assert card.dob == date(2000, 1, 15)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
@PROPERTY_SETTINGS
def test_any_real_date_round_trips_in_us_order(day: date) -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DBB", day.strftime("%m%d%Y"))))

    assert card.dob == day


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
@PROPERTY_SETTINGS
def test_any_real_date_round_trips_in_canadian_order(day: date) -> None:
    elements = replace_element(replace_element(BASIC, "DCG", "CAN"), "DBB", day.strftime("%Y%m%d"))

    assert parse_aamva(build_card(elements, iin="636012")).dob == day


# --- names, sex, jurisdiction, subfile ----------------------------------------------------------------


def test_v01_full_name_with_suffix_is_split() -> None:
    card = parse_aamva(build_card(["DAASMITH,JOHN,PAUL,JR", "DBB19800101"], version=1))

    assert (card.last, card.first, card.middle, card.suffix) == ("SMITH", "JOHN", "PAUL", "JR")


def test_v01_middle_initial_that_looks_like_a_suffix_stays_the_middle_name() -> None:
    card = parse_aamva(build_card(["DAASMITH,JOHN,V", "DBB19800101"], version=1))

    assert (card.middle, card.suffix) == ("V", None)


def test_full_name_with_only_spaces_is_read_first_middle_last() -> None:
    # Pennsylvania's version-01 cards write "JOHN ROBERT LEE SMITH" without commas.
    card = parse_aamva(build_card(["DAAJOHN ROBERT LEE SMITH", "DBB19800101"], version=1))

    assert card.full_name == "JOHN ROBERT LEE SMITH"
    assert (card.first, card.middle, card.last) == ("JOHN", "ROBERT LEE", "SMITH")


@pytest.mark.parametrize(
    ("full_name", "parts"),
    [
        ("CORTEZ,PABLO,,JR", ("PABLO", None, "CORTEZ", "JR")),
        ("SMITH, MARY JONES", ("MARY", "JONES", "SMITH")),
        ("AL-MAAR$DIANA$ROBIN", ("DIANA", "ROBIN", "AL-MAAR")),
        ("JOHN SMITH JR.", ("JOHN", None, "SMITH", "JR.")),
    ],
)
def test_full_name_variants_are_split(full_name: str, parts: tuple[str | None, ...]) -> None:
    card = parse_aamva(build_card([f"DAA{full_name}", "DBB19800101"], version=1))

    assert (card.first, card.middle, card.last, card.suffix)[: len(parts)] == parts


def test_middle_initial_written_into_the_first_name_is_split_off() -> None:
    # Wyoming writes "MOTORIST E" in DAC and leaves DAD empty.
    elements = replace_element(replace_element(BASIC, "DAC", "MOTORIST E"), "DAD", "")

    card = parse_aamva(build_card(elements))

    assert (card.first, card.middle) == ("MOTORIST", "E")


def test_given_names_separated_by_spaces_are_split() -> None:
    elements = [e for e in BASIC if not e.startswith(("DAC", "DAD"))] + ["DCTMARY ANN LOUISE"]

    card = parse_aamva(build_card(elements, version=2))

    assert (card.first, card.middle) == ("MARY", "ANN LOUISE")


@pytest.mark.parametrize(
    ("code", "sex"),
    [("1", "M"), ("2", "F"), ("9", "X"), ("X", "X"), ("M", "M"), ("0", None)],
)
def test_sex_codes_are_mapped(code: str, sex: str | None) -> None:
    assert parse_aamva(build_card(replace_element(BASIC, "DBC", code))).sex == sex


def test_jurisdiction_comes_from_the_iin_when_daj_is_missing() -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DAJ", None), iin="636015"))

    assert card.jurisdiction == "TX"
    assert card.iin == "636015"


def test_jurisdiction_comes_from_daj_for_an_issuer_not_in_the_table() -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DAJ", "DC"), iin="636027"))

    assert card.jurisdiction == "DC"


def test_unknown_issuer_without_daj_has_no_jurisdiction() -> None:
    card = parse_aamva(build_card(replace_element(BASIC, "DAJ", None), iin="999999"))

    assert card.jurisdiction is None


@pytest.mark.parametrize(
    ("subfile", "document_type"), [("DL", "driver_license"), ("ID", "id_card"), ("EN", "enhanced_license")]
)
def test_subfile_type_is_reported(subfile: str, document_type: str) -> None:
    card = parse_aamva(build_card(BASIC, subfile=subfile))

    assert (card.subfile, card.document_type) == (subfile, document_type)


def test_iin_table_covers_every_us_and_canadian_jurisdiction() -> None:
    states = {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
        "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
        "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    }  # fmt: skip
    territories = {"DC", "AS", "GU", "MP", "PR", "VI"}
    provinces = {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}

    assert len(states) == 50
    assert set(IIN_JURISDICTIONS.values()) == states | territories | provinces
    assert states | territories == US_JURISDICTIONS
    assert provinces == CANADIAN_JURISDICTIONS


@pytest.mark.parametrize(
    ("iin", "jurisdiction"),
    [
        ("636010", "FL"),
        ("636000", "VA"),
        ("636012", "ON"),
        ("636014", "CA"),
        ("636015", "TX"),
        ("604428", "QC"),
    ],
)
def test_known_issuers_map_to_their_jurisdiction(iin: str, jurisdiction: str) -> None:
    assert iin_jurisdiction(iin) == jurisdiction


# --- not a usable barcode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "not_an_id_barcode"),
        ("   \r\n", "not_an_id_barcode"),
        ("hello world", "not_an_id_barcode"),
        ("0821840904660", "not_an_id_barcode"),
        ("ANSI standards are nice", "not_an_id_barcode"),
        ("@", "truncated"),
        ("@\n\x1e\rANS", "truncated"),
        ("@\n\x1e\rANSI 6360", "truncated"),
        ("@\n\x1e\rANSI 63601010", "truncated"),
        ("@\n\x1e\rANSI 636010100102DL0041", "truncated"),
    ],
)
def test_unusable_input_raises_a_parse_error_with_a_stable_code(raw: str, code: str) -> None:
    with pytest.raises(IdParseError) as raised:
        parse_aamva(raw)

    assert raised.value.code == code
    assert isinstance(raised.value, ValueError)
    assert str(raised.value)


def test_binary_noise_is_not_an_id_barcode() -> None:
    noise = bytes(range(256)) * 8

    with pytest.raises(IdParseError) as raised:
        parse_aamva(noise)

    assert raised.value.code == "not_an_id_barcode"


def test_header_without_any_subfile_is_not_an_id_barcode() -> None:
    raw = "@\n\x1e\rANSI 636010100101ZF00310010ZFZFA1\r" + "x" * 100

    with pytest.raises(IdParseError) as raised:
        parse_aamva(raw)

    assert raised.value.code == "not_an_id_barcode"


@pytest.mark.parametrize(
    "raw",
    [
        "A" * 100_000,
        "ANSI " * 20_000,
        "@\n\x1e\rANSI 636010" * 6_000,
        "@\n\x1e\rANSI 636010100102DL00410278ZF03190008" + "DL" * 50_000,
        "@\n\x1e\rANSI 636010100102DL00410278ZF03190008" + "\n" * 100_000,
        "@\n\x1e\rANSI 636010100101DL00310278DLDAQ1" + "\nDAQ2" * 25_000,
        "".join(chr(c % 0x2FF) for c in range(100_000)),
    ],
    ids=["letters", "markers", "headers", "subfile-types", "newlines", "elements", "code-points"],
)
def test_100_kb_of_junk_raises_a_parse_error(raw: str) -> None:
    with pytest.raises(IdParseError):
        parse_aamva(raw)


def test_a_real_barcode_followed_by_100_kb_of_junk_still_parses() -> None:
    assert parse_aamva(SAMPLES["s1"] + "Z" * 100_000).dob == date(1986, 6, 6)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_truncation_at_any_point_gives_a_consistent_partial_result_or_a_parse_error(name: str) -> None:
    raw = SAMPLES[name]
    full = parse_aamva(raw)
    outcomes = set()

    for cut in range(len(raw)):
        partial = assert_only_id_parse_error(raw[:cut])
        if partial is None:
            outcomes.add("error")
            continue
        outcomes.add("partial")
        # Whatever survives the cut is exactly what the whole card says; nothing is half a value.
        for field in dataclasses.fields(AamvaId):
            value = getattr(partial, field.name)
            assert value is None or value == getattr(full, field.name), (cut, field.name)
        assert partial.dob == full.dob

    assert outcomes == {"error", "partial"}


def test_a_birth_date_cut_short_is_reported_as_truncated() -> None:
    raw = build_card(BASIC)
    cut = raw.index("DBB") + 7

    with pytest.raises(IdParseError) as raised:
        parse_aamva(raw[:cut])

    assert raised.value.code == "truncated"


def test_an_expiry_cut_after_its_element_id_is_left_out_not_read_as_empty() -> None:
    raw = SAMPLES["s1"]
    cut = raw.index("DBA") + 3

    card = parse_aamva(raw[:cut])

    assert card.dob == date(1986, 6, 6)
    assert card.expires is None


# --- properties ---------------------------------------------------------------------------------------


@given(st.text(max_size=600))
@PROPERTY_SETTINGS
def test_arbitrary_text_raises_nothing_but_id_parse_error(raw: str) -> None:
    assert_only_id_parse_error(raw)


@given(st.binary(max_size=600))
@PROPERTY_SETTINGS
def test_arbitrary_bytes_raise_nothing_but_id_parse_error(raw: bytes) -> None:
    assert_only_id_parse_error(raw)


@given(st.text(alphabet="@\n\r\x1e|ANSIDLZ0123456789 BACQ", max_size=400))
@PROPERTY_SETTINGS
def test_text_made_of_barcode_characters_raises_nothing_but_id_parse_error(raw: str) -> None:
    assert_only_id_parse_error("@\n\x1e\rANSI " + raw)


Edit = tuple[str, float, str]
EDIT = st.tuples(
    st.sampled_from(["delete", "insert", "replace"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.sampled_from(["\n", "\r", "|", "\x1e", "0", "9", "D", "Z", " ", "\x85", "é", "²"]) | st.characters(),
)


@given(st.sampled_from(SAMPLE_NAMES), st.lists(EDIT, min_size=1, max_size=10))
@PROPERTY_SETTINGS
def test_mutated_real_samples_raise_nothing_but_id_parse_error(name: str, edits: list[Edit]) -> None:
    chars = list(SAMPLES[name])
    for operation, where, char in edits:
        at = int(where * len(chars)) if chars else 0
        if operation == "insert":
            chars.insert(at, char)
        elif chars and operation == "delete":
            del chars[at]
        elif chars:
            chars[at] = char

    card = assert_only_id_parse_error("".join(chars))

    if card is not None:
        assert MIN_YEAR <= card.dob.year <= MAX_YEAR
