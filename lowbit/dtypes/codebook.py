"""Codebook (lookup-table) formats: NF4 and any table of 2**b float entries.

A code is an index into a table of float values; ``decode`` is a lookup and
``encode`` picks the entry nearest to the input, a tie (an input exactly
halfway between two distinct entries, or an input equal to a duplicated
entry) going to the *lower code*.  The tie test is exact: midpoints between
adjacent entries are computed with ``fractions.Fraction`` once per table and
rounded to float64 with the side they fall on recorded, so the comparison of a
float64 input with a midpoint that float64 cannot hold is still exact.

Tables are stored as float64 with -0.0 normalised to 0.0 (a codebook does not
carry signed zeros) so that equality and hashing agree.  Two codebooks with
the same table are the same type.  A user table's name is
``cb<b>_<8 hex digits of the table's SHA-256>``; :func:`codebook` records
each table it sees so that ``dtype(name)`` finds it again within the process
(pickling carries the table itself, so another process needs no registry).

NF4 is the 16-value NormalFloat table of QLoRA (Dettmers et al., "QLoRA:
Efficient Finetuning of Quantized LLMs", NeurIPS 2023, appendix E; the values
as shipped in bitsandbytes' ``NF4`` dequantization table).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lowbit.dtypes.base import DType, _as_float64, _first_nan_error
from lowbit.errors import DTypeError

__all__ = ["CodebookType", "codebook", "NF4_VALUES", "lookup_codebook"]

NF4_VALUES: tuple[float, ...] = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)

# Named tables: a codebook whose table is one of these is called by this name.
_NAMED_TABLES: dict[tuple[float, ...], str] = {NF4_VALUES: "nf4"}
_REGISTRY: dict[str, CodebookType] = {}


@dataclass(frozen=True, repr=False, init=False)
class CodebookType(DType):
    """A format whose code ``c`` means ``table[c]``; ``len(table) == 2**bits``.

    Built as ``CodebookType(values)``; the table is kept in the field ``table``
    because ``values()`` is every format's method listing decoded codes.
    """

    table: tuple[float, ...]

    is_float = False
    is_int = False

    def __init__(self, values: tuple[float, ...]) -> None:
        try:
            entries = tuple(float(v) for v in values)
        except (TypeError, ValueError) as exc:
            raise DTypeError(f"codebook: entries must be real numbers ({exc})") from None
        n = len(entries)
        if n < 2 or n > 256 or n & (n - 1):
            raise DTypeError(
                f"codebook: a table needs 2**b entries with b in 1..8, got {n} entries"
            )
        for i, v in enumerate(entries):
            if not np.isfinite(v):
                raise DTypeError(f"codebook: entry {i} is {v}; entries must be finite")
        entries = tuple(0.0 if v == 0.0 else v for v in entries)
        object.__setattr__(self, "table", entries)
        _register(self)

    def __reduce__(self) -> tuple[object, tuple[tuple[float, ...]]]:
        # Rebuild through the constructor so unpickling registers the name too.
        return (CodebookType, (self.table,))

    # -- identity ----------------------------------------------------------
    @property
    def bits(self) -> int:  # type: ignore[override]
        return len(self.table).bit_length() - 1

    @property
    def name(self) -> str:
        named = _NAMED_TABLES.get(self.table)
        if named is not None:
            return named
        digest = hashlib.sha256(np.asarray(self.table, dtype="<f8").tobytes()).hexdigest()
        return f"cb{self.bits}_{digest[:8]}"

    @property
    def is_signed(self) -> bool:
        return self.min < 0

    @property
    def min(self) -> float:
        return float(min(self.table))

    @property
    def max(self) -> float:
        return float(max(self.table))

    # -- codec -------------------------------------------------------------
    def decode(self, codes: object) -> np.ndarray:
        c = self._check_codes(codes)
        return np.asarray(self.table, dtype=np.float64)[c.astype(np.intp)]

    def encode(self, x: object, saturate: bool = False, rounding: str | None = None) -> np.ndarray:
        """Nearest entry's code; ties (and duplicated entries) go to the lower code.

        Out-of-range inputs and +-inf map to the extreme entries (a codebook
        always saturates); NaN raises :class:`DTypeError`.
        """
        where = f"{self.name}.encode"
        self._check_rounding_none(rounding)
        xf = _as_float64(x, where)
        err = _first_nan_error(xf, where, self.name)
        if err is not None:
            raise err
        thresholds, inclusive_cum, codes = _decision_tables(self.table)
        lo = np.searchsorted(thresholds, xf, side="left")
        hi = np.searchsorted(thresholds, xf, side="right")
        passed = lo + (inclusive_cum[hi] - inclusive_cum[lo])
        return codes[passed].astype(self.code_dtype)


def _decision_tables(table: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds between sorted distinct entries, for exact nearest-entry search.

    ``x`` belongs above threshold i when ``x > t[i]`` or (``x == t[i]`` and
    threshold i is inclusive); the count of thresholds passed indexes
    ``codes`` (the lowest code of each distinct value, sorted by value).
    """
    cached = _DECISION_CACHE.get(table)
    if cached is not None:
        return cached
    lowest_code: dict[float, int] = {}
    for code, v in enumerate(table):
        lowest_code.setdefault(v, code)
    distinct = sorted(lowest_code)
    thresholds, inclusive = [], []
    for a, b in zip(distinct, distinct[1:]):
        mid = (Fraction(a) + Fraction(b)) / 2
        t = float(mid)
        if Fraction(t) == mid:
            # Exactly halfway goes to the lower code of the two neighbours.
            upper_wins = lowest_code[b] < lowest_code[a]
        else:
            # No float64 equals mid: x > mid iff x > t (t below mid) or x >= t (t above).
            upper_wins = Fraction(t) > mid
        thresholds.append(t)
        inclusive.append(upper_wins)
    inclusive_cum = np.concatenate([[0], np.cumsum(np.asarray(inclusive, dtype=np.int64))])
    result = (
        np.asarray(thresholds, dtype=np.float64),
        inclusive_cum,
        np.asarray([lowest_code[v] for v in distinct], dtype=np.int64),
    )
    _DECISION_CACHE[table] = result
    return result


_DECISION_CACHE: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _register(cb: CodebookType) -> None:
    name = cb.name
    known = _REGISTRY.get(name)
    if known is not None and known.table != cb.table:
        raise DTypeError(
            f"codebook: name {name!r} already belongs to a different table (hash collision)"
        )
    _REGISTRY.setdefault(name, cb)


def codebook(values: object) -> CodebookType:
    """The codebook type of a table of 2**b finite floats (b in 1..8), code = index."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"codebook: cannot read the table as floats ({exc})") from None
    if arr.ndim != 1:
        raise DTypeError(f"codebook: the table must be one-dimensional, got shape {arr.shape}")
    return CodebookType(tuple(arr.tolist()))


def lookup_codebook(name: str) -> CodebookType | None:
    """The codebook created in this process under ``name`` (None if there is none)."""
    return _REGISTRY.get(name)
