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
