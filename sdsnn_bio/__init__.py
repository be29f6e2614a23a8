"""sdsnn-bio: adaptive structural development (SD-SNN) in spiking networks on Brian2.

Han, Zhao, Zeng, Pan, "Adaptive Sparse Structure Development with Pruning and
Regeneration for Spiking Neural Networks", arXiv 2211.12219.

Citations of the form "method §2.1" in the code point to the sections of
``docs/method.md``, the project's account of the method.

Where things are: one module per mechanism in :mod:`sdsnn_bio.structure`
(``constraint``, ``pruning``, ``regeneration``, ``neurotrophic``; the
between-runs schedule in ``step``) and :mod:`sdsnn_bio.learning`; the synapse
model as a Brian2 library in :mod:`sdsnn_bio.spines`; shapes in
:mod:`sdsnn_bio.geometry`; the Brian2 network in :mod:`sdsnn_bio.network`, run
period by period by :mod:`sdsnn_bio.runner`; the period loop in
:mod:`sdsnn_bio.loop`, talking to a network through :mod:`sdsnn_bio.interface`;
run folders in :mod:`sdsnn_bio.records`.
"""
__version__ = "0.1.0"
