"""sdsnn-bio: adaptive structural development (SD-SNN) in spiking networks on Brian2.

Han, Zhao, Zeng, Pan, "Adaptive Sparse Structure Development with Pruning and
Regeneration for Spiking Neural Networks", arXiv 2211.12219.
"""
__version__ = "0.1.0"
