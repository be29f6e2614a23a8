"""Property-based tests: random and mutated configurations and data files never give a traceback.

A configuration is either accepted (and its network's geometry builds: shapes,
synapse counts, connectivity) or rejected with a one-line ConfigError naming
the file. A data file is either read consistently or rejected with a DataError
naming the file.
"""

import copy
import gzip
import os
import tempfile
import tomllib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdsnn_bio.config import config_from_dict, find_model
from sdsnn_bio.data.mnist import load_idx_dataset, read_idx
from sdsnn_bio.errors import ConfigError, DataError
from sdsnn_bio.geometry import connectivity, conv_connectivity, estimate_memory, layer_shapes, synapse_counts

with open(find_model("mnist_paper"), "rb") as _f:
    BASE = tomllib.load(_f)

values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(-3, 50),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-5, 500),
    st.text(max_size=8), st.sampled_from(["dense", "local", "conv", "pool", "soft", "hard", "mnist5k", "last", "hidden"]),
    st.lists(st.integers(-2, 40), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(d, prefix=()):
    """Every (container, key) position in a nested config dictionary."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append((d, k))
            out += _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.append((d, i))
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_configs(draw):
    d = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        positions = _paths(d)
        if not positions:
            break
        container, key = draw(st.sampled_from(positions))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(min_size=1, max_size=6))] = draw(values)
        else:
            container.append(draw(values))
    return d


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_configs())
def test_config_fuzz_accepts_or_rejects_cleanly(d):
    try:
        cfg = config_from_dict(d, source="fuzz.toml")
    except ConfigError as err:
        msg = str(err)
        assert msg.startswith("fuzz.toml") and "\n" not in msg
        return
    shapes = layer_shapes(cfg)
    counts = synapse_counts(cfg)
    assert estimate_memory(cfg, 100) > 0
    for k, layer in enumerate(cfg.layers):
        if layer.type == "conv" and np.prod(shapes[k + 1]) * shapes[k][0] * layer.kernel ** 2 <= 2_000_000:
            # the positions' synapses (a locally connected layer's), each reading a kernel weight
            i, j, e = conv_connectivity(layer, shapes[k], shapes[k + 1])
            assert len(i) == len(e) and e.min(initial=0) >= 0 and e.max(initial=0) < counts[k]
        elif layer.type != "conv" and counts[k] <= 2_000_000:
            i, j = connectivity(layer, shapes[k], shapes[k + 1])
            assert len(i) == counts[k]
        else:
            continue
        assert i.max(initial=0) < np.prod(shapes[k]) and j.max(initial=0) < np.prod(shapes[k + 1])


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 200)),
    extra=st.binary(max_size=5),
    compress=st.booleans(),
)
def test_idx_fuzz_reads_or_names_the_file(shape, edits, cut, extra, compress):
    arr = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    raw = bytearray(_idx_bytes(arr))
    for pos, val in edits:
        if pos < len(raw):
            raw[pos] = val
    if cut is not None:
        raw = raw[:cut]
    raw += extra
    data = gzip.compress(bytes(raw)) if compress else bytes(raw)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz-images-idx3-ubyte" + (".gz" if compress else ""))
        with open(path, "wb") as f:
            f.write(data)
        try:
            out = read_idx(path)
        except DataError as err:
            assert "fuzz-images-idx3-ubyte" in str(err)
            return
        assert out.size == len(raw) - 4 - 4 * out.ndim


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(n_img=st.integers(0, 4), n_lbl=st.integers(0, 4), label=st.integers(0, 255), side=st.sampled_from([28, 27]))
def test_idx_dataset_fuzz(n_img, n_lbl, label, side):
    with tempfile.TemporaryDirectory() as tmp:
        for split in ("train", "t10k"):
            imgs = np.zeros((n_img, side, side), np.uint8)
            lbls = np.full(n_lbl, label, np.uint8)
            with open(os.path.join(tmp, f"{split}-images-idx3-ubyte"), "wb") as f:
                f.write(_idx_bytes(imgs))
            with open(os.path.join(tmp, f"{split}-labels-idx1-ubyte"), "wb") as f:
                f.write(_idx_bytes(lbls))
        try:
            ds = load_idx_dataset(tmp)
        except DataError as err:
            assert "idx" in str(err)
            return
        assert ds.x_train.shape[1:] == (1, 28, 28) and len(ds.y_train) == n_img == n_lbl and label <= 9
