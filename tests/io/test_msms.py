"""MS-DIAL-style MS/MS strings."""

from __future__ import annotations

import numpy as np
import pytest

from ms2img.errors import InputFileError
from ms2img.io.msms import format_msms, is_empty_msms, parse_msms


def test_parses_pairs():
    mz, intensity = parse_msms("50.446:6 96.859:6.5  120:1.7E4")
    np.testing.assert_allclose(mz, [50.446, 96.859, 120.0])
    np.testing.assert_allclose(intensity, [6, 6.5, 17000.0])
    assert mz.dtype == np.float64 and intensity.dtype == np.float64


def test_semicolons_and_zero_intensity_are_accepted():
    mz, intensity = parse_msms("50:0;60:1")
    np.testing.assert_allclose(mz, [50, 60])
    np.testing.assert_allclose(intensity, [0, 1])


@pytest.mark.parametrize("cell", ["", "  ", None, float("nan"), "null", "NA"])
def test_empty_cells_give_no_peaks(cell):
    assert is_empty_msms(cell)
    mz, intensity = parse_msms(cell)
    assert len(mz) == 0 and len(intensity) == 0


@pytest.mark.parametrize(
    "text, words",
    [
        ("50.1:100 foo 80.2:3", "'foo'"),
        ("50.1:100 80.2", "'80.2'"),
        ("50.1:100:3", "not 'mz:intensity'"),
        ("abc:100", "'abc:100'"),
        ("50.1:-3", "negative"),
        ("-50.1:3", "m/z <= 0"),
        ("50.1:inf", "finite"),
        ("50.1,100 60,1", "not 'mz:intensity'"),
    ],
)
def test_garbage_names_file_line_and_peak(tmp_path, text, words):
    with pytest.raises(InputFileError) as err:
        parse_msms(text, tmp_path / "x.txt", 12)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "x.txt") + ", line 12")
    assert words in msg


def test_without_a_path_raises_plain_value_error():
    with pytest.raises(ValueError, match="line 3"):
        parse_msms("1:2 x", line=3)


def test_format_round_trips():
    mz, intensity = np.array([50.12345, 99.5]), np.array([10.0, 2.5e6])
    back = parse_msms(format_msms(mz, intensity))
    np.testing.assert_allclose(back[0], mz)
    np.testing.assert_allclose(back[1], intensity)


def _outcome(arr):
    from ms2img.io.msms import MsmsFormatError, parse_msms_column

    try:
        return parse_msms_column(arr, column=None, max_fragments=12)
    except MsmsFormatError as exc:
        return (exc.row, exc.problem, exc.token)


def test_compiled_parser_gives_the_arrow_parsers_results(monkeypatch):
    """After warm_up the compiled single pass parses plain columns; results (values, signs, rows) and every error
    are the Arrow path's, bit for bit, on tricky cells and random numbers."""
    import pyarrow as pa

    from ms2img.io import msms

    if not msms.warm_up():
        pytest.skip("numba is not installed")
    kernel = msms._compiled["plain"]
    rng = np.random.default_rng(11)

    def number() -> str:
        if rng.random() < 0.5:
            return f"{rng.uniform(0, 2000):.{rng.integers(0, 9)}f}"
        digits = "".join(rng.choice(list("0123456789"), rng.integers(0, 20)))
        cut = rng.integers(0, len(digits) + 1)
        text = rng.choice(["", "", "+", "-"]) + (digits[:cut] + "." + digits[cut:] if rng.random() < 0.7 else digits)
        return text + (
            f"{rng.choice(['e', 'E'])}{rng.choice(['', '+', '-'])}{rng.integers(0, 40)}" if rng.random() < 0.3 else ""
        )

    tricky = ["NA", "null", " ; ", "1:2:3", "1:", ":1", "1e:2", "1.5:2 x", "50:1\u00a0", "\x1c50:1", "50:-0", "-0:5",
              "1e22:1", "1e23:1", "9007199254740993:1", "12345678901234567890:1", "50:1e400", "50:nan", "5.:.5",
              "+.5:+5e+3", "50:6;60:7", "50:6\t60:7\r\n", "50:6\x0b60:7", "é:1", "1..2:3", ".:1"]  # fmt: skip
    columns = [[c] for c in tricky]
    for _ in range(400):
        cells = []
        for _ in range(rng.integers(1, 5)):
            if rng.random() < 0.1:
                cells.append(None)
            else:
                sep = str(rng.choice([" ", ";", " ; ", "\t"]))
                cells.append(sep.join(f"{number()}:{number()}" for _ in range(rng.integers(0, 5))))
        columns.append(cells)
    compiled_taken = 0
    for cells in columns:
        arr = pa.array(cells, type=pa.string())
        for column in (arr, arr.cast(pa.large_string()), pa.array(["x", *cells], type=pa.string()).slice(1)):
            compiled_taken += msms._parse_plain(kernel, column, 12) is not None
            fast = _outcome(column)
            monkeypatch.setitem(msms._compiled, "plain", None)
            arrow = _outcome(column)
            monkeypatch.setitem(msms._compiled, "plain", kernel)
            if isinstance(arrow, tuple) and not isinstance(arrow, msms.ParsedMsms):
                assert fast == arrow, cells
            else:
                for a, b in zip(fast, arrow, strict=True):
                    assert a.dtype == b.dtype and np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))
    assert compiled_taken > 100  # the comparison did exercise the compiled path
