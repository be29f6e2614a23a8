"""Animations of a layer's structure across a run, saved as GIF (Pillow) or MP4 (ffmpeg)."""

from pathlib import Path

import numpy as np

from ..errors import FigureError
from ._common import axes_or_current as _axes
from .fields import field_rgba

__all__ = ["animate_images", "animate_receptive_fields", "save_animation"]


def animate_images(frames, periods, axes=None, interval=200, title="period {period}", xlabel=None,
                   ylabel=None, **kwds):
    """One image per period, shown one after the other.

    Parameters
    ----------
    frames : sequence of arrays, or callable
        The image of each period (2-D values or an RGBA array), or ``frames(period)`` returning
        it (read lazily, one frame at a time, while the animation is drawn or saved).
    periods : sequence of int
        The periods, in showing order.
    axes : matplotlib.axes.Axes, optional
    interval : int
        Milliseconds between frames on screen.
    title : str
        Title format, with ``{period}``.
    xlabel, ylabel : str, optional
    **kwds
        Passed to ``imshow``.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        Drawing into ``axes.figure``; ``axes.images[0]`` shows the current frame.
    """
    from matplotlib.animation import FuncAnimation

    ax = _axes(axes)
    periods = list(periods)
    if not periods:
        raise ValueError("no periods to animate")
    get = frames if callable(frames) else dict(zip(periods, frames)).__getitem__
    kw = dict(interpolation="nearest")
    kw.update(kwds)
    im = ax.imshow(np.asarray(get(periods[0])), **kw)
    text = ax.set_title(title.format(period=periods[0]))
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)

    def update(period):
        im.set_data(np.asarray(get(period)))
        text.set_text(title.format(period=period))
        return im, text

    return FuncAnimation(ax.figure, update, frames=periods, interval=interval, blit=False,
                         cache_frame_data=False, repeat=True)


def animate_receptive_fields(frames, periods, image_shape=(28, 28), axes=None, vmax=None, cmap="RdBu_r",
                             ncols=None, **kwds):
    """Receptive fields of a dense layer's units, period after period, pruned units greyed.

    Parameters
    ----------
    frames : sequence of (w, alive), or callable
        Per period the weight matrix ``[n_pre, n_units]`` and the alive units, or
        ``frames(period)`` returning them.
    periods : sequence of int
    image_shape, cmap, ncols : see :func:`sdsnn_bio.viz.plot_receptive_fields`.
    vmax : float, optional
        Colour scale ``[-vmax, vmax]`` of every frame (default: from the first frame).
    **kwds
        Passed to :func:`animate_images`.

    Returns
    -------
    matplotlib.animation.FuncAnimation
    """
    periods = list(periods)
    get = frames if callable(frames) else dict(zip(periods, frames)).__getitem__
    if vmax is None:
        w0, a0 = get(periods[0])
        w0 = np.asarray(w0, float)
        if a0 is not None and np.any(a0):
            w0 = w0[:, np.asarray(a0, bool)]
        vmax = float(np.max(np.abs(w0))) if w0.size else 1.0
        vmax = vmax or 1.0

    def rgba(period):
        w, a = get(period)
        return field_rgba(w, a, image_shape, vmax=vmax, cmap=cmap, ncols=ncols)

    ax = _axes(axes)
    anim = animate_images(rgba, periods, axes=ax, **kwds)
    ax.set_xticks([])
    ax.set_yticks([])
    h, w = np.asarray(image_shape)[-2:]
    ax.set_xlabel(f"one tile per unit ({h}x{w} input pixels), pruned grey; colour: weight in [{-vmax:.2g}, {vmax:.2g}]")
    return anim


def save_animation(anim, path, fps=5, dpi=100):
    """Save an animation: ``.gif`` with Pillow, ``.mp4`` with ffmpeg (only where ffmpeg exists).

    Raises
    ------
    FigureError
        The suffix is neither ``.gif`` nor ``.mp4``, or ``.mp4`` is asked for without ffmpeg.
    """
    from matplotlib import animation

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise FigureError(f"{path}: an MP4 needs ffmpeg, which is not installed here; save a .gif instead")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise FigureError(f"{path}: animations are saved as .gif or .mp4, not '{path.suffix}'")
    anim.save(str(path), writer=writer, dpi=dpi)
    return path
