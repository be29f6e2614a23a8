"""Pictures of a developing network, in the brian2tools shape.

Each plot function takes plain arrays (or a run's per-period table), an optional
``axes``, labels its axes with the quantity and its unit, passes ``**kwds`` to
matplotlib and returns the ``Axes``; where a grid of axes is inherent it returns the
``Figure``, and the animations return a ``FuncAnimation``.

Run table (``periods.csv``)
    :func:`plot_accuracy_compression`, :func:`plot_alive`, :func:`plot_spine_widths`,
    :func:`plot_main_job` (SD-SNN beside its dense twin), :func:`plot_pruning_rate`,
    :func:`plot_accuracy_runs` (several runs' accuracy, trailing means).
Receptive fields of a dense layer over its input image
    :func:`plot_receptive_fields` (one period), :func:`plot_receptive_fields_periods`
    (several periods side by side), :func:`field_mosaic`, :func:`field_rgba`.
Structure over development
    :func:`plot_synapse_matrix` (a mask, weight or spine width per synapse as a pre x post
    image, or per pair of channels), :func:`plot_kernels` and :func:`kernel_mosaic` (a
    convolution's kernel as k x k tiles), :func:`plot_alive_units`, :func:`plot_live_synapses`,
    :func:`plot_unit_periods` (unit x period images), :func:`plot_distribution_periods`
    (weight or spine-width histograms over periods), :func:`plot_events` (pruning and
    regeneration rasters).
The surviving network
    :func:`plot_network` (layers as columns, alive units as nodes, live synapses as edges).
Animations
    :func:`animate_images`, :func:`animate_receptive_fields`, :func:`save_animation`
    (GIF through Pillow, MP4 through ffmpeg where it exists).

The functions that read a run folder and draw these into its ``figures/`` folder are in
:mod:`sdsnn_bio.report`.
"""

from .animation import animate_images, animate_receptive_fields, save_animation
from .fields import field_mosaic, field_rgba, plot_receptive_fields, plot_receptive_fields_periods
from .network import group_units, plot_network
from .structure import (EVENT_COLORS, EVENT_KINDS, kernel_mosaic, plot_alive_units, plot_distribution_periods,
                        plot_events, plot_kernels, plot_live_synapses, plot_synapse_matrix, plot_unit_periods,
                        synapse_image)
from .table import (plot_accuracy_compression, plot_accuracy_runs, plot_alive, plot_main_job, plot_pruning_rate,
                    plot_spine_widths)

__all__ = ["plot_accuracy_compression", "plot_alive", "plot_spine_widths", "plot_main_job", "plot_pruning_rate",
           "plot_accuracy_runs",
           "field_mosaic", "field_rgba", "plot_receptive_fields", "plot_receptive_fields_periods",
           "synapse_image", "plot_synapse_matrix", "kernel_mosaic", "plot_kernels", "plot_unit_periods", "plot_alive_units",
           "plot_live_synapses", "plot_distribution_periods", "plot_events", "EVENT_KINDS",
           "EVENT_COLORS", "group_units", "plot_network", "animate_images", "animate_receptive_fields",
           "save_animation"]
