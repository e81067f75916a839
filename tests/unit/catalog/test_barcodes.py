from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posomni.catalog.barcodes import (
    Barcode,
    BarcodeError,
    BarcodeFormat,
    BarcodeKind,
    classify,
    compute_check_digit,
    display_form,
    expand_upce,
    is_valid,
    make_code,
    normalize,
    parse,
)
from posomni.kit.errors import ValidationFailed

# Check digits below were worked out by hand or are published examples (GS1, Wikipedia), not by this module.


@pytest.mark.parametrize(
    ("code", "gtin14", "fmt"),
    [
        ("036000291452", "00036000291452", BarcodeFormat.UPC_A),
        ("012345678905", "00012345678905", BarcodeFormat.UPC_A),
        ("4006381333931", "04006381333931", BarcodeFormat.EAN_13),
        ("5901234123457", "05901234123457", BarcodeFormat.EAN_13),
        ("9780306406157", "09780306406157", BarcodeFormat.EAN_13),
        ("0036000291452", "00036000291452", BarcodeFormat.EAN_13),
        ("96385074", "00000096385074", BarcodeFormat.EAN_8),
        ("55123457", "00000055123457", BarcodeFormat.EAN_8),
        ("10036000291459", "10036000291459", BarcodeFormat.GTIN_14),
        ("00036000291452", "00036000291452", BarcodeFormat.GTIN_14),
        ("04252614", "00042100005264", BarcodeFormat.UPC_E),
    ],
)
def test_valid_codes_of_every_format_normalise_to_gtin14(code: str, gtin14: str, fmt: BarcodeFormat) -> None:
    barcode = parse(code)

    assert barcode.gtin14 == gtin14
    assert barcode.format is fmt
    assert normalize(code) == gtin14
    assert is_valid(code)


def test_the_same_item_scanned_as_upc_a_ean13_or_gtin14_has_one_stored_form() -> None:
    forms = ["036000291452", "0036000291452", "00036000291452"]

    assert {normalize(code) for code in forms} == {"00036000291452"}


@pytest.mark.parametrize(
    ("upce", "upca"),
    [
        ("01234505", "012000003455"),  # last digit 0: manufacturer 12000, item 00345
        ("01234514", "012100003454"),  # 1
        ("01234523", "012200003453"),  # 2
        ("01234531", "012300000451"),  # 3: manufacturer 12300, item 00045
        ("01234543", "012340000053"),  # 4: manufacturer 12340, item 00005
        ("01234558", "012345000058"),  # 5-9: manufacturer 12345, item 0000x
        ("01234565", "012345000065"),
        ("01234572", "012345000072"),
        ("01234589", "012345000089"),
        ("01234596", "012345000096"),
        ("04252614", "042100005264"),
        ("19876573", "198765000073"),  # number system 1
    ],
)
def test_upce_expands_to_upca_for_every_last_digit(upce: str, upca: str) -> None:
    assert expand_upce(upce) == upca
    barcode = parse(upce, expected=BarcodeFormat.UPC_E)
    assert barcode.gtin14 == "00" + upca
    assert barcode.format is BarcodeFormat.UPC_E
    assert normalize(upce) == normalize(upca)


def test_upce_with_a_wrong_check_digit_is_refused() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        expand_upce("04252615")
    assert excinfo.value.code == "invalid_check_digit"


def test_upce_with_number_system_other_than_0_or_1_is_refused() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        expand_upce("24252614")
    assert excinfo.value.code == "invalid_characters"
    with pytest.raises(BarcodeError) as excinfo:
        parse("96385074", expected=BarcodeFormat.UPC_E)
    assert excinfo.value.code == "invalid_characters"


def test_eight_digits_valid_as_both_upce_and_ean8_read_as_upce_unless_the_scanner_says_ean8() -> None:
    # 01234565 passes both check-digit rules; the two readings are different items.
    assert parse("01234565").format is BarcodeFormat.UPC_E
    assert normalize("01234565") == "00012345000065"
    as_ean8 = parse("01234565", expected=BarcodeFormat.EAN_8)
    assert as_ean8.format is BarcodeFormat.EAN_8
    assert as_ean8.gtin14 == "00000001234565"


def test_an_expected_format_given_as_its_string_value_is_honoured() -> None:
    assert parse("01234565", expected="ean_8").format is BarcodeFormat.EAN_8  # type: ignore[arg-type]
    assert make_code("0123456", "ean_8") == "01234565"  # type: ignore[arg-type]
    assert make_code("0123456", "upc_e") == "01234565"  # type: ignore[arg-type]


def test_eight_digits_starting_with_0_or_1_that_only_pass_as_ean8_read_as_ean8() -> None:
    assert parse("17654326").format is BarcodeFormat.EAN_8
    assert parse("07654329").format is BarcodeFormat.EAN_8
    with pytest.raises(BarcodeError) as excinfo:
        parse("07654329", expected=BarcodeFormat.UPC_E)
    assert excinfo.value.code == "invalid_check_digit"


def test_the_known_bad_code_0821840904660_is_refused_for_its_check_digit() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse("0821840904660")
    assert excinfo.value.code == "invalid_check_digit"
    assert not is_valid("0821840904660")
    # The same body with its right check digit is accepted.
    assert normalize("0821840904668") == "00821840904668"


@pytest.mark.parametrize("length", [1, 2, 5, 6, 7, 9, 10, 11, 15, 16, 18, 20])
def test_codes_of_other_lengths_are_refused(length: int) -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse("1" * length)
    assert excinfo.value.code == "invalid_length"


@pytest.mark.parametrize("code", ["425261", "0425261", "", "   "])
def test_short_upce_forms_and_empty_input_are_refused_as_wrong_length(code: str) -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse(code)
    assert excinfo.value.code == "invalid_length"


@pytest.mark.parametrize(
    "code",
    [
        "03600029145A",
        "036-000-291452",
        "0360 00291452",
        "+36000291452",
        "٠٣٦٠٠٠٢٩١٤٥٢",  # Arabic-Indic digits: isdigit() says yes, a barcode says no
        "０３６０００２９１４５２",  # full-width digits
        "²36000291452",
    ],
)
def test_non_digits_are_refused(code: str) -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse(code)
    assert excinfo.value.code == "invalid_characters"


def test_a_non_string_is_refused_as_invalid_characters() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse(36000291452)  # type: ignore[arg-type]
    assert excinfo.value.code == "invalid_characters"


@pytest.mark.parametrize("code", [" 036000291452", "036000291452\r\n", "\t036000291452 "])
def test_surrounding_whitespace_from_keyboard_wedge_scanners_is_stripped(code: str) -> None:
    assert normalize(code) == "00036000291452"


def test_an_expected_format_of_another_length_is_refused() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        parse("036000291452", expected=BarcodeFormat.EAN_13)
    assert excinfo.value.code == "invalid_length"


def test_barcode_errors_are_value_errors_and_422_validation_failures_without_the_input() -> None:
    secret = "DAQD12345678\nDCSSMITH"
    with pytest.raises(BarcodeError) as excinfo:
        parse(secret)
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert isinstance(error, ValidationFailed)
    assert error.status_code == 422
    assert "SMITH" not in str(error.to_dict())


@pytest.mark.parametrize(
    ("gtin14", "shown"),
    [
        ("00036000291452", "036000291452"),  # UPC-A
        ("04006381333931", "4006381333931"),  # EAN-13
        ("00000096385074", "96385074"),  # EAN-8
        ("10036000291459", "10036000291459"),  # GTIN-14 of a case
        ("00042100005264", "042100005264"),  # scanned as UPC-E, shown as its UPC-A
    ],
)
def test_display_form_is_the_shortest_gs1_form(gtin14: str, shown: str) -> None:
    assert display_form(gtin14) == shown
    assert parse(gtin14).display == shown


@pytest.mark.parametrize("code", ["036000291452", "4006381333931", "96385074", "10036000291459"])
def test_gtin14_round_trips_through_its_display_form(code: str) -> None:
    assert display_form(normalize(code)) == code
    assert normalize(display_form(normalize(code))) == normalize(code)


def test_display_form_needs_a_valid_gtin14() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        display_form("036000291452")
    assert excinfo.value.code == "invalid_length"
    with pytest.raises(BarcodeError) as excinfo:
        display_form("00036000291453")
    assert excinfo.value.code == "invalid_check_digit"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("036000291452", BarcodeKind.PRODUCT),
        ("4006381333931", BarcodeKind.PRODUCT),
        ("9780306406157", BarcodeKind.PRODUCT),  # ISBN: a book is a product
        ("96385074", BarcodeKind.PRODUCT),
        ("10036000291459", BarcodeKind.PRODUCT),  # case of 036000291452
        ("212345678909", BarcodeKind.IN_STORE),  # UPC-A number system 2: random weight
        ("412345678903", BarcodeKind.IN_STORE),  # UPC-A number system 4: store use
        ("0212345678909", BarcodeKind.IN_STORE),  # EAN-13 prefix 02
        ("2001234567893", BarcodeKind.IN_STORE),  # EAN-13 prefix 20
        ("2901234567896", BarcodeKind.IN_STORE),  # EAN-13 prefix 29
        ("20123451", BarcodeKind.IN_STORE),  # GS1-8 prefix 2: restricted circulation
        ("07654329", BarcodeKind.IN_STORE),  # GS1-8 prefix 0 (fails as UPC-E): restricted circulation
        ("90036000291455", BarcodeKind.IN_STORE),  # GTIN-14 indicator 9: variable measure
        ("512345678900", BarcodeKind.COUPON),  # UPC-A number system 5
        ("9801234567892", BarcodeKind.COUPON),  # EAN-13 prefix 98
        ("9901234567899", BarcodeKind.COUPON),  # EAN-13 prefix 99
    ],
)
def test_prefixes_are_classified_so_the_register_can_refuse_coupons(code: str, kind: BarcodeKind) -> None:
    barcode = parse(code)
    assert barcode.kind is kind
    assert classify(barcode.gtin14) is kind


def test_check_digit_of_known_bodies() -> None:
    assert compute_check_digit("03600029145") == 2
    assert compute_check_digit("400638133393") == 1
    assert compute_check_digit("9638507") == 4
    assert compute_check_digit("08218409046") == 6


@pytest.mark.parametrize(
    ("body", "code"), [("", "invalid_length"), ("1" * 18, "invalid_length"), ("12a", "invalid_characters")]
)
def test_check_digit_of_a_bad_body_is_refused(body: str, code: str) -> None:
    with pytest.raises(BarcodeError) as excinfo:
        compute_check_digit(body)
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("body", "fmt", "code"),
    [
        ("03600029145", BarcodeFormat.UPC_A, "036000291452"),
        ("400638133393", BarcodeFormat.EAN_13, "4006381333931"),
        ("9638507", BarcodeFormat.EAN_8, "96385074"),
        ("1003600029145", BarcodeFormat.GTIN_14, "10036000291459"),
        ("0425261", BarcodeFormat.UPC_E, "04252614"),
    ],
)
def test_make_code_appends_the_check_digit_for_each_format(body: str, fmt: BarcodeFormat, code: str) -> None:
    assert make_code(body, fmt) == code
    assert parse(code, expected=fmt).format is fmt


def test_make_code_refuses_a_body_of_the_wrong_length() -> None:
    with pytest.raises(BarcodeError) as excinfo:
        make_code("123", BarcodeFormat.UPC_A)
    assert excinfo.value.code == "invalid_length"


# GTIN formats: body length, and the format to pin so that 8 digits are read as EAN-8.
_BODY_LENGTHS = [
    (7, BarcodeFormat.EAN_8),
    (11, BarcodeFormat.UPC_A),
    (12, BarcodeFormat.EAN_13),
    (13, BarcodeFormat.GTIN_14),
]
_GTIN_BODIES = st.sampled_from(_BODY_LENGTHS).flatmap(
    lambda spec: st.tuples(st.text("0123456789", min_size=spec[0], max_size=spec[0]), st.just(spec[1]))
)


@given(_GTIN_BODIES)
def test_any_body_with_its_computed_check_digit_validates(body_and_format: tuple[str, BarcodeFormat]) -> None:
    body, fmt = body_and_format
    code = body + str(compute_check_digit(body))

    barcode = parse(code, expected=fmt)

    assert barcode == Barcode(gtin14=code.zfill(14), format=fmt, kind=classify(code.zfill(14)))
    assert make_code(body, fmt) == code


@given(_GTIN_BODIES, st.data())
def test_any_single_digit_change_is_refused(spec: tuple[str, BarcodeFormat], data: st.DataObject) -> None:
    body, fmt = spec
    code = body + str(compute_check_digit(body))
    position = data.draw(st.integers(0, len(code) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != code[position]]))
    changed = code[:position] + replacement + code[position + 1 :]

    with pytest.raises(BarcodeError) as excinfo:
        parse(changed, expected=fmt)
    assert excinfo.value.code == "invalid_check_digit"


@given(st.sampled_from("01"), st.text("0123456789", min_size=6, max_size=6))
def test_any_upce_made_from_a_body_expands_to_a_valid_upca(system: str, digits: str) -> None:
    upce = make_code(system + digits, BarcodeFormat.UPC_E)
    upca = expand_upce(upce)

    assert parse(upca).format is BarcodeFormat.UPC_A
    assert normalize(upce, expected=BarcodeFormat.UPC_E) == normalize(upca)


@given(st.text())
def test_any_text_is_either_a_barcode_or_a_barcode_error(text: str) -> None:
    if is_valid(text):
        barcode = parse(text)
        assert len(barcode.gtin14) == 14
        assert normalize(barcode.gtin14) == barcode.gtin14
    else:
        with pytest.raises(BarcodeError) as excinfo:
            parse(text)
        assert excinfo.value.code in {"invalid_characters", "invalid_length", "invalid_check_digit"}
