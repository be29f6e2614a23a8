"""The in-memory dataset container shared by every loader in :mod:`sdsnn_bio.data`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdsnn_bio.errors import DataError

__all__ = ["Dataset", "DIGIT_CLASSES", "FASHION_CLASSES"]

DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of images with integer labels.

    ``x_*``: float64 images in [0, 1], shape (n, C, H, W) (channels first).
    ``y_*``: int64 labels in ``0 .. len(classes) - 1``, shape (n,).
    ``name``: short identifier (``"mnist5k"``, ``"mnist"``, ``"fashion"``).
    ``classes``: human-readable class names, index = label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.ndim != 4:
                raise DataError(
                    f"dataset {self.name!r}: x_{split} must be an array of shape (n, C, H, W), "
                    f"found {getattr(x, 'shape', type(x).__name__)}")
            if not isinstance(y, np.ndarray) or y.ndim != 1:
                raise DataError(
                    f"dataset {self.name!r}: y_{split} must be a 1-D label array, "
                    f"found {getattr(y, 'shape', type(y).__name__)}")
            if len(x) != len(y):
                raise DataError(
                    f"dataset {self.name!r}: {len(x)} {split} images but {len(y)} {split} labels")
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise DataError(
                    f"dataset {self.name!r}: {split} labels must lie in 0..{len(self.classes) - 1}, "
                    f"found {int(y.min())}..{int(y.max())}")

    @property
    def n_train(self) -> int:
        return int(len(self.y_train))

    @property
    def n_test(self) -> int:
        return int(len(self.y_test))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={self.n_train}, test={self.n_test}, "
                f"image_shape={self.image_shape}, classes={self.n_classes})")
