"""Measured reference data shipped with the package: one CSV file per dataset.

Every row carries its value (a number, or a range ``low``..``high``, or a word in
a ``qualitative`` row), its unit, the age as the source writes it and, where it
can be placed there, the age on the shared axis (days after birth, with the
conversion used), the species and area, the source (authors, year, journal,
and where in the paper the number is printed) and a confidence tag.

Tags (from ``shared/reference/neuro_reference_data.md``, where each row was compiled):

``VERIFIED``
    the number was read in the primary paper's own text (abstract, table, figure legend);
``SECONDARY``
    the number was read in a secondary source (review table, BioNumbers, another paper).

Only these two are shipped. Rows the compiler tagged DERIVED (computed from other rows),
RECALLED or NOT CONFIRMED are not in the files; :func:`load_dataset` refuses any row with
another tag, so a wrong row cannot slip in.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import DataError

__all__ = ["DATASETS", "COLUMNS", "SHIPPED_TAGS", "Row", "Dataset", "ReferenceDataError", "load_dataset",
           "dataset_path"]

#: Datasets shipped in ``sdsnn_bio/neuro/data`` (file stem -> description).
DATASETS = {
    "synapse_density": "synapse density over age and its overshoot (human, macaque)",
    "spine_persistence": "fraction of spines persisting >= 8 days by age (Holtmaat 2005)",
    "spine_turnover": "spines formed and eliminated per two weeks (Zuo 2005)",
    "spine_size": "spine-size statistics: log-normal shape, volumes",
    "neuron_death": "developmental neuron-death fractions (Southwell 2012 and others)",
}
#: Columns of every file, in order.
COLUMNS = ("quantity", "value", "low", "high", "unit", "statistic", "age", "age_days_low", "age_days_high",
           "age_conversion", "species", "area", "authors", "year", "journal", "location", "tag", "notes")
#: Tags a shipped row may carry.
SHIPPED_TAGS = ("VERIFIED", "SECONDARY")
_REQUIRED = ("quantity", "unit", "age", "species", "area", "authors", "journal", "location", "tag")


class ReferenceDataError(DataError):
    """A reference-data file is missing or a row is malformed: the message names the file and row."""


@dataclass(frozen=True)
class Row:
    """One measured figure.

    ``value``, ``low`` and ``high`` are floats or None (a range has ``low`` and/or
    ``high``; a bound has one of them); ``text`` holds the value of a qualitative row.
    ``age_days`` is ``(low, high)`` on the shared axis (days after birth) or None where
    the row cannot be placed on it (prenatal, unspecified adult age).
    """

    dataset: str
    line: int
    quantity: str
    value: float | None
    low: float | None
    high: float | None
    text: str
    unit: str
    statistic: str
    age: str
    age_days: tuple | None
    age_conversion: str
    species: str
    area: str
    authors: str
    year: str
    journal: str
    location: str
    tag: str
    notes: str

    @property
    def source(self) -> str:
        """Short citation: authors, year, journal, where the number is printed."""
        year = f" {self.year}" if self.year else ""
        return f"{self.authors}{year}, {self.journal}, {self.location}"

    @property
    def short_source(self) -> str:
        """First author (or name) and year, e.g. ``Holtmaat et al. 2005``."""
        names = [n.split("(")[0].strip() for n in self.authors.split(";")]
        a = names[0]
        if len(names) == 2:
            a = f"{names[0]} & {names[1]}"
        elif len(names) > 2:
            a += " et al."
        return f"{a} {self.year.split(' ')[0]}".strip()

    @property
    def interval(self) -> tuple:
        """``(low, high)`` of the measured value: the range, or the value twice; None ends are open."""
        if self.low is None and self.high is None:
            return (self.value, self.value)
        return (self.low, self.high)

    def describe(self) -> str:
        """The measured value as text, with its unit."""
        if self.text:
            return self.text
        lo, hi = self.interval
        if lo == hi:
            s = f"{lo:g}"
        elif lo is None:
            s = f"<= {hi:g}"
        elif hi is None:
            s = f">= {lo:g}"
        else:
            s = f"{lo:g}-{hi:g}"
            if self.value is not None:
                s = f"{self.value:g} ({s})"
        return f"{s} {self.unit}"


@dataclass(frozen=True)
class Dataset:
    """The rows of one dataset file."""

    name: str
    path: Path
    rows: tuple

    def select(self, **match) -> list:
        """Rows whose fields equal ``match`` (e.g. ``quantity="spines formed in 2 weeks"``)."""
        return [r for r in self.rows if all(getattr(r, k) == v for k, v in match.items())]

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)


def dataset_path(name: str) -> Path:
    """Path of the shipped CSV file of dataset ``name``."""
    if name not in DATASETS:
        raise ReferenceDataError(f"no reference dataset {name!r} (datasets: {', '.join(DATASETS)})")
    return Path(resources.files("sdsnn_bio.neuro") / "data" / f"{name}.csv")


def _number(cell: str, where: str, column: str):
    cell = cell.strip()
    if not cell:
        return None
    try:
        x = float(cell)
    except ValueError:
        raise ReferenceDataError(f"{where}: column '{column}' must be a number, got {cell!r}") from None
    if not math.isfinite(x):
        raise ReferenceDataError(f"{where}: column '{column}' is not finite ({cell!r})")
    return x


def _row(name: str, path: Path, line: int, rec: dict) -> Row:
    where = f"{path}, row {line}"
    for col in _REQUIRED:
        if not (rec.get(col) or "").strip():
            raise ReferenceDataError(f"{where}: column '{col}' is empty (every row needs its value's unit, age, "
                                     "species, area, source and tag)")
    tag = rec["tag"].strip()
    if tag not in SHIPPED_TAGS:
        raise ReferenceDataError(f"{where}: tag {tag!r} may not be shipped (only {', '.join(SHIPPED_TAGS)}; "
                                 "RECALLED, NOT CONFIRMED and DERIVED numbers stay out of the data)")
    unit = rec["unit"].strip()
    text = ""
    if unit == "qualitative":
        text = rec["value"].strip()
        value = low = high = None
        if not text:
            raise ReferenceDataError(f"{where}: a qualitative row needs its value as a word")
    else:
        value = _number(rec["value"], where, "value")
        low = _number(rec["low"], where, "low")
        high = _number(rec["high"], where, "high")
        if value is None and low is None and high is None:
            raise ReferenceDataError(f"{where}: no value (neither 'value' nor 'low'/'high')")
        if low is not None and high is not None and low > high:
            raise ReferenceDataError(f"{where}: low {low:g} > high {high:g}")
    a_lo = _number(rec["age_days_low"], where, "age_days_low")
    a_hi = _number(rec["age_days_high"], where, "age_days_high")
    if (a_lo is None) != (a_hi is None):
        raise ReferenceDataError(f"{where}: give both age_days_low and age_days_high, or neither")
    age_days = None
    if a_lo is not None:
        if a_lo > a_hi or a_lo < 0:
            raise ReferenceDataError(f"{where}: age in days {a_lo:g}..{a_hi:g} is not a postnatal interval")
        if not rec["age_conversion"].strip():
            raise ReferenceDataError(f"{where}: an age in days needs its conversion ('age_conversion')")
        age_days = (a_lo, a_hi)
    return Row(dataset=name, line=line, quantity=rec["quantity"].strip(), value=value, low=low, high=high, text=text,
               unit=unit, statistic=rec["statistic"].strip(), age=rec["age"].strip(), age_days=age_days,
               age_conversion=rec["age_conversion"].strip(), species=rec["species"].strip(),
               area=rec["area"].strip(), authors=rec["authors"].strip(), year=rec["year"].strip(),
               journal=rec["journal"].strip(), location=rec["location"].strip(), tag=tag,
               notes=rec["notes"].strip())


def load_dataset(name: str, path=None) -> Dataset:
    """Read and validate one dataset.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    path : path, optional
        Read this file instead of the shipped one (same columns).

    Returns
    -------
    Dataset

    Raises
    ------
    ReferenceDataError
        Missing file, wrong columns, or a malformed row (the message names file and row;
        rows are counted as lines of the file, the header being line 1).
    """
    if path is None:
        path = dataset_path(name)
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = tuple(reader.fieldnames or ())
            if header != COLUMNS:
                raise ReferenceDataError(f"{path}: columns {list(header)} differ from the expected {list(COLUMNS)}")
            rows = []
            for rec in reader:
                line = reader.line_num
                if None in rec or any(v is None for v in rec.values()):
                    raise ReferenceDataError(f"{path}, row {line}: {len(COLUMNS)} cells expected")
                rows.append(_row(name, path, line, rec))
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: reference data file not found") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceDataError(f"{path}: unreadable CSV ({exc})") from exc
    if not rows:
        raise ReferenceDataError(f"{path}: no rows")
    return Dataset(name=name, path=path, rows=tuple(rows))
