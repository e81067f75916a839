"""Code 128 (subset B) as SVG: the receipt number printed as a barcode, scanned back at returns.

Written here rather than pulled from a package: it is a table and a checksum, and the register must print
without anything loaded from the network.
"""

from __future__ import annotations

from html import escape

# Bar/space widths of each symbol value 0–106 (106 is STOP with its final bar), from the Code 128 standard.
_PATTERNS = (  # noqa: SIM905 (a table of widths reads better as text)
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 221312 231212 112232 122132 122231 "
    "113222 123122 123221 223211 221132 221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 231113 231311 112133 112331 132131 "
    "113123 113321 133121 313121 211331 231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 112412 122114 122411 142112 142211 "
    "241211 221114 413111 241112 134111 111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 114131 311141 411131 211412 211214 "
    "211232 2331112"
).split()
_START_B = 104
_STOP = 106


def encode(text: str) -> list[int]:
    """Symbol values for `text` (printable ASCII), with start, checksum and stop."""
    if not text or any(not 32 <= ord(ch) <= 126 for ch in text):
        raise ValueError("Code 128-B encodes printable ASCII only")
    values = [ord(ch) - 32 for ch in text]
    checksum = (_START_B + sum(i * v for i, v in enumerate(values, start=1))) % 103
    return [_START_B, *values, checksum, _STOP]


def svg(text: str, *, module: float = 1.5, height: float = 40.0) -> str:
    x = 10 * module  # quiet zone
    bars: list[str] = []
    for value in encode(text):
        for index, width in enumerate(_PATTERNS[value]):
            w = int(width) * module
            if index % 2 == 0:
                bars.append(f'<rect x="{x:g}" y="0" width="{w:g}" height="{height:g}"/>')
            x += w
    total = x + 10 * module
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total:g}" height="{height + 14:g}" '
        f'viewBox="0 0 {total:g} {height + 14:g}" role="img" aria-label="{escape(text)}">'
        f'<g fill="#000">{"".join(bars)}</g>'
        f'<text x="{total / 2:g}" y="{height + 12:g}" font-size="11" text-anchor="middle" '
        f'font-family="monospace">{escape(text)}</text></svg>'
    )
