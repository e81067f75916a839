"""Code 128-B for the receipt number: the width table obeys the standard's own invariants, and the SVG reads
back to the text with a valid checksum."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posomni.kit import code128

PATTERNS = code128._PATTERNS


def test_the_table_has_every_symbol_once() -> None:
    assert len(PATTERNS) == 107
    assert len(set(PATTERNS)) == 107


def test_every_symbol_is_three_bars_and_three_spaces_over_eleven_modules() -> None:
    for value, pattern in enumerate(PATTERNS[:106]):
        widths = [int(w) for w in pattern]
        assert len(widths) == 6, value
        assert sum(widths) == 11, value
        assert all(1 <= w <= 4 for w in widths), value
        # The standard's parity rule: bars cover an even number of modules, spaces an odd one.
        assert sum(widths[0::2]) % 2 == 0, value


def test_stop_is_thirteen_modules_ending_in_a_bar() -> None:
    stop = [int(w) for w in PATTERNS[106]]
    assert (len(stop), sum(stop)) == (7, 13)


def test_well_known_symbols() -> None:
    # Start A/B/C and a few data symbols as printed in the standard's table.
    assert list(PATTERNS[103:106]) == ["211412", "211214", "211232"]
    assert PATTERNS[0] == "212222"  # space
    assert PATTERNS[ord("A") - 32] == "111323"
    assert PATTERNS[ord("0") - 32] == "123122"


def test_encode_adds_start_checksum_and_stop() -> None:
    # 104 + 1·'R'(50) + 2·'-'(13) + 3·'1'(17) = 231; 231 mod 103 = 25.
    assert code128.encode("R-1") == [104, 50, 13, 17, 25, 106]


@pytest.mark.parametrize("text", ["", "é", "line\nbreak", "\x7f"])
def test_text_outside_printable_ascii_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        code128.encode(text)


def decode_svg(svg: str, module: float = 1.5) -> list[int]:
    """Read the bars back into symbol values, as a scanner would, from the rectangles' positions."""
    rects = [(float(x), float(w)) for x, w in re.findall(r'<rect x="([\d.]+)" y="0" width="([\d.]+)"', svg)]
    widths: list[int] = []
    position = 10 * module
    for x, w in rects:
        if x > position:
            widths.append(round((x - position) / module))  # the space before this bar
        widths.append(round(w / module))
        position = x + w
    lookup = {pattern: value for value, pattern in enumerate(PATTERNS)}
    values = []
    while widths:
        size = 7 if len(widths) == 7 else 6
        values.append(lookup["".join(str(w) for w in widths[:size])])
        widths = widths[size:]
    return values


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=24))
@settings(max_examples=200, deadline=None)
def test_the_svg_reads_back_to_the_text_with_a_valid_checksum(text: str) -> None:
    values = decode_svg(code128.svg(text))

    assert (values[0], values[-1]) == (104, 106)
    data, checksum = values[1:-2], values[-2]
    assert "".join(chr(v + 32) for v in data) == text
    assert checksum == (104 + sum(i * v for i, v in enumerate(data, start=1))) % 103


def test_the_svg_is_labelled_and_escapes_the_text() -> None:
    svg = code128.svg('R<1>&"')

    assert 'aria-label="R&lt;1&gt;&amp;&quot;"' in svg
    assert "<1>" not in svg
