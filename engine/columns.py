"""Arrow columns to the arrays the detectors take, counting type errors on the way.

A numeric feature becomes float64 with NaN for missing; a value that is not a number (a
string that does not parse, a nested value) is a *type error*: counted, and treated as
missing for the statistics. A categorical feature becomes bucket codes (see
:meth:`driftline.detectors.CategoricalReference.encode`) computed in Arrow's C++ kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from driftline.detectors import CategoricalReference


def is_numeric_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def is_categorical_type(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_boolean(t)
        or pa.types.is_dictionary(t)
    )


def numpy_of(arr: pa.Array | pa.ChunkedArray) -> NDArray[Any]:
    """What ``arr.to_numpy(zero_copy_only=False)`` gives for a numeric or boolean Arrow
    array, chunked or not: its own dtype (booleans as ``bool``), or float64 with NaN for
    nulls when it has any (booleans with nulls are refused). Read from the array's buffers
    (a view of a single chunk without nulls), not through ``to_numpy`` or ``fill_null``,
    whose conversions import pandas when pandas is installed, a library a replay never
    uses otherwise (see :func:`string_array`)."""
    t = arr.type
    if arr.null_count:
        if pa.types.is_boolean(t):
            raise ValueError("a boolean array with nulls has no NumPy bool form")
        arr = pc.cast(arr, pa.float64(), safe=False)
        t = arr.type
    if pa.types.is_boolean(t):
        dtype = np.dtype(np.bool_)
    elif pa.types.is_floating(t) or pa.types.is_integer(t):
        kind = "f" if pa.types.is_floating(t) else "i" if pa.types.is_signed_integer(t) else "u"
        dtype = np.dtype(f"{kind}{t.bit_width // 8}")
    else:
        raise TypeError(f"numpy_of takes a numeric or boolean array, got {t}")
    parts = []
    for c in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        n, start = len(c), c.offset
        if n == 0:
            continue
        validity, data = c.buffers()[:2]
        if dtype == np.bool_:
            values = _bits(data, start, n)
        else:
            values = np.frombuffer(data, dtype=dtype, count=start + n)[start:]
        if c.null_count:  # float64 here
            values = np.where(_bits(validity, start, n), values, math.nan)
        parts.append(values)
    if not parts:
        return np.empty(0, dtype)
    if len(parts) > 1:
        return np.concatenate(parts)
    if parts[0].base is not None:  # a view of Arrow's memory: read-only, as to_numpy's
        parts[0].flags.writeable = False
    return parts[0]


def _bits(buf: pa.Buffer, start: int, n: int) -> NDArray[np.bool_]:
    """Bits ``start`` to ``start + n`` of an Arrow bitmap (least significant bit first)."""
    bits = np.unpackbits(np.frombuffer(buf, np.uint8), count=start + n, bitorder="little")
    return bits[start:].astype(np.bool_)


def string_array(values: list[str]) -> pa.Array:
    """An Arrow string array of ``values``, built from its buffers: ``pa.array`` would do,
    but its first call imports pandas when pandas is installed (pyarrow's pandas shim
    checks every input for a pandas type), a library that a replay of files never uses
    otherwise (``tests/test_lean.py`` checks that replay does not import it)."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(),
        len(encoded),
        [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
    )


def to_float(arr: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.float64], int]:
    """(float64 values with NaN for missing, number of type errors)."""
    t = arr.type
    if pa.types.is_dictionary(t):  # dictionary-encoded: its values decide
        try:
            arr = pc.cast(arr, t.value_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _type_errors(arr)
        t = arr.type
    if is_numeric_type(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
        # unchecked: an integer past ±2⁵³ becomes the nearest float, as a JSON number does
        # (a checked cast raises on it, and once stopped the engine)
        out = pc.cast(arr, pa.float64(), safe=False)
        return np.asarray(numpy_of(out), dtype=np.float64), 0
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            out = pc.cast(arr, pa.float64())
            return np.asarray(numpy_of(out), dtype=np.float64), 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _parse_slowly(arr.to_pylist())
    return _type_errors(arr)  # timestamps, lists, structs…: no number here


def _type_errors(arr: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.float64], int]:
    """All NaN, and every present value a type error."""
    return np.full(len(arr), np.nan), len(arr) - arr.null_count


def _parse_slowly(items: list[object]) -> tuple[NDArray[np.float64], int]:
    out = np.empty(len(items), dtype=np.float64)
    errors = 0
    for i, v in enumerate(items):
        if v is None:
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out[i] = np.nan
            errors += 1
    return out, errors


def to_strings(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, int]:
    """Category values as strings (booleans as ``true``/``false``, numbers in their plain
    form), and the number of values that have no string form (type errors, made null)."""
    t = arr.type
    if pa.types.is_string(t):
        return arr, 0
    try:
        if pa.types.is_dictionary(t):
            arr = pc.cast(arr, t.value_type)
            t = arr.type
        if pa.types.is_float16(t):  # Arrow compares no half floats; float32 holds them
            arr = pc.cast(arr, pa.float32())
            t = arr.type
        if pa.types.is_floating(t):
            return _float_strings(arr), 0
        return pc.cast(arr, pa.string()), 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # lists, structs…
        nulls = pa.nulls(len(arr), pa.string())
        return nulls, len(arr) - arr.null_count


def _float_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """3.0 and 3 are the same category: integral floats print as integers, the others (NaN
    and ±inf included) as floats. The casts are unchecked: past ±2⁵³ a checked int64 →
    float cast raises (an integral float like 2⁵³ + 2 once stopped the engine); past ±2⁶³
    float → int64 is undefined (the CPU's choice), so such values print as floats."""
    as_int = pc.cast(arr, pa.int64(), safe=False)
    in_range = pc.less(pc.abs(arr), 2.0**63)
    integral = pc.and_(in_range, pc.equal(pc.cast(as_int, arr.type, safe=False), arr))
    return pc.if_else(integral, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))


class CategoryEncoder:
    """Encodes Arrow columns against one categorical reference (vocabulary set built once)."""

    def __init__(self, reference: CategoricalReference) -> None:
        self.reference = reference
        self._k = len(reference.categories)
        self._vocab = string_array(list(reference.vocabulary))

    def encode(self, arr: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.int64], int]:
        strings, type_errors = to_strings(arr)
        idx = pc.index_in(strings, value_set=self._vocab)
        found = numpy_of(idx)  # float64 with NaN where not in the vocabulary
        codes = (
            np.where(np.isnan(found), -2, found).astype(np.int64)
            if idx.null_count
            else found.astype(np.int64)
        )
        np.minimum(codes, self._k, out=codes)
        missing = numpy_of(pc.is_null(strings))
        codes[missing] = -1
        return codes, type_errors


def json_column(values: list[Any]) -> pa.Array:
    """An Arrow array from JSON values; mixed types become strings, so that a number column
    with a stray string keeps its numbers and the stray value becomes a type error later."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # OverflowError: integers that fit no one Arrow type (2**64 - 1 beside -1)
        return pa.array([_as_text(v) for v in values], type=pa.string())


def _as_text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, int | float):
        return repr(v)
    try:
        return orjson.dumps(v).decode()
    except TypeError:  # nested deeper than orjson writes (254 levels): a type error anyway
        return "[…]" if isinstance(v, list) else "{…}"
