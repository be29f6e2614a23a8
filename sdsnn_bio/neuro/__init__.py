"""Neuroscience reference data and comparisons of simulated development with them.

:mod:`~sdsnn_bio.neuro.reference`
    the shipped datasets (one CSV each, with sources and confidence tags) and their loader;
:mod:`~sdsnn_bio.neuro.measures`
    the measures the data report, computed on arrays or a run folder;
:mod:`~sdsnn_bio.neuro.runs`
    the arrays of a run folder (structural history) and its period-to-age mapping;
:mod:`~sdsnn_bio.neuro.compare`
    every comparison in one table, the report of ``sdsnn-bio compare``;
:mod:`~sdsnn_bio.neuro.plots`
    the run's curves over the data points.
"""

from .measures import (MeasureError, density_overshoot, neuron_death, persistent_fraction, select_looks,
                       size_fits, turnover, turnover_two_weeks)
from .reference import DATASETS, SHIPPED_TAGS, Dataset, ReferenceDataError, Row, load_dataset
from .runs import DEFAULT_DAYS_PER_PERIOD, DEFAULT_START_DAY, RunRecord, run_record, time_axis

__all__ = ["DATASETS", "SHIPPED_TAGS", "Dataset", "Row", "ReferenceDataError", "load_dataset",
           "MeasureError", "density_overshoot", "turnover", "turnover_two_weeks", "persistent_fraction",
           "select_looks", "size_fits", "neuron_death", "RunRecord", "run_record", "time_axis",
           "DEFAULT_DAYS_PER_PERIOD", "DEFAULT_START_DAY"]
