"""ms2img.render.arrow: one-value detection on Arrow-string and categorical id columns."""

from __future__ import annotations

import pandas as pd


def test_single_value_detection():
    from ms2img.render.arrow import single_value as _single_value

    def s(values, **kw):
        return pd.Series(values, **kw)

    assert _single_value(s(["ab"] * 5, dtype="str")) == (True, "ab")
    assert _single_value(s([""] * 3, dtype="str")) == (True, "")
    assert _single_value(s(["ab", "ab", "ba"], dtype="str")) == (False, None)
    assert _single_value(s(["a", "bab", "ab"], dtype="str")) == (False, None)  # same bytes, other lengths
    assert _single_value(s(["abab", "ab", "ab"], dtype="str")) == (False, None)
    assert _single_value(s(["ab", None], dtype="str")) == (False, None)
    assert _single_value(s(["x"] * 4, dtype=object)) == (False, None)  # not Arrow: the general path decides
    assert _single_value(s(["q"] * 4, dtype="category")) == (True, "q")
    assert _single_value(s(pd.Categorical(["q"] * 4, categories=["q", "r"]))) == (False, None)
    # a sliced, chunked Arrow array (non-zero offset into the buffers)
    import pyarrow as pa

    chunked = pa.chunked_array([pa.array(["zz", "ab", "ab", "ab"], pa.large_string()).slice(1)])
    assert _single_value(s(pd.arrays.ArrowStringArray(chunked))) == (True, "ab")
    chunked = pa.chunked_array([pa.array(["ab", "ab"]), pa.array(["ab", "ac"])])
    assert _single_value(s(pd.arrays.ArrowStringArray(chunked))) == (False, None)
