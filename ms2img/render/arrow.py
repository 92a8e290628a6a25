"""Fast column codes for the events table: dictionary codes from categoricals, run detection on Arrow strings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def factorize(values: pd.Series, sort: bool = False, want_uniques: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Dense int64 codes and the unique values (sorted when ``sort``; None when not ``want_uniques``).

    Fast for Arrow-backed strings (pandas' default) laid out in runs (one accession per file, a precursor's
    fragments together): one vectorised comparison finds the runs and only the run heads are hashed.
    """
    n = len(values)
    arr = None
    if isinstance(values.dtype, pd.CategoricalDtype):  # as render_dir reads Parquet: codes come for free
        codes = values.array.codes.astype(np.int64)
        if n == 0 or codes.min() >= 0:
            if not (want_uniques or sort):
                return codes, None
            cats = np.asarray(values.cat.categories, dtype=object)
            if sort:
                order = np.argsort(cats.astype(str), kind="stable")
                rank = np.empty(len(order), dtype=np.int64)
                rank[order] = np.arange(len(order))
                codes, cats = rank[codes], cats[order]
            return codes, cats
    else:
        arr = arrow_strings(values)
    if arr is None or n < 2:
        codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=False)
        return codes.astype(np.int64, copy=False), np.asarray(uniques)
    change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1))
    n_change = pc.sum(change).as_py() or 0
    if n_change == 0:  # one value (one accession, one replicate)
        return np.zeros(n, dtype=np.int64), np.array([arr[0].as_py()], dtype=object)
    runs = n_change < n // 4
    if runs:
        starts = np.empty(n_change + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:] = pc.indices_nonzero(change).to_numpy()
        starts[1:] += 1
        heads = arr.take(pa.array(starts))
    else:
        heads = arr
    encoded = pc.dictionary_encode(heads)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if not want_uniques and not sort:
        return (np.repeat(codes, np.diff(np.append(starts, n))) if runs else codes), None
    uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
    if sort:
        order = np.argsort(uniques.astype(str), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes, uniques = rank[codes], uniques[order]
    if runs:
        codes = np.repeat(codes, np.diff(np.append(starts, n)))
    return codes, uniques


def arrow_strings(values: pd.Series) -> pa.Array | None:
    """The column as one Arrow (large_)string array without nulls (zero-copy for Arrow-backed strings), or None."""
    if not isinstance(values.dtype, pd.StringDtype | pd.ArrowDtype):
        return None
    try:
        arr = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    return arr


def single_value(values: pd.Series) -> tuple[bool, Any]:
    """``(True, value)`` when every row holds the same non-null value, else ``(False, None)``, without hashing; for
    categoricals (as ``render_dir`` reads Parquet and the serving model builds its frame) and Arrow strings (as
    ``coerce_events`` leaves them); other dtypes answer False and take the general path.

    Arrow strings are one value when every offset step is the first string's length and the character buffer
    repeats with that period: two vectorised comparisons, no per-row Python objects.
    """
    n = len(values)
    if n == 0:
        return False, None
    if isinstance(values.dtype, pd.CategoricalDtype):
        # exactly one category (as a one-accession Parquet file or a serving request has): the general path would
        # count unused categories as accessions/replicates, which changes nothing but the jitter's random draws
        cat = values.array
        if len(cat.categories) == 1 and not cat.codes.any():
            return True, cat.categories[0]
        return False, None
    arr = arrow_strings(values)
    if arr is None:
        return False, None
    _, offsets_buf, data_buf = arr.buffers()
    itemsize = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = np.frombuffer(offsets_buf, dtype=f"<i{itemsize}", count=n + 1, offset=arr.offset * itemsize)
    size = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != size * n or (n > 1 and not (np.diff(offsets) == size).all()):
        return False, None
    if size:
        chars = np.frombuffer(data_buf, dtype=np.uint8, count=size * n, offset=int(offsets[0]))
        if not np.array_equal(chars[size:], chars[:-size]):
            return False, None
    return True, arr[0].as_py()
