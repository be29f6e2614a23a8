"""The README's example of the spine synapse in a user's own Brian2 network runs and does what it says."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"README has no python block after <!-- {marker} -->"
    return m.group(1)


def test_spine_synapses_example(capsys):
    """The README's code, run on Brian2's ``numpy`` target (set before it runs,
    reset by conftest): the Cython target compiles ten extension modules first, which
    takes 1-4 minutes on a fresh clone and tests nothing of the example; Cython code
    of the same rules is checked by ``tests/test_equivalence.py``."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    g = {"__name__": "readme_example"}
    exec(compile(readme_block("example: spine synapses"), "README.md", "exec"), g)
    syn, pruned, dead = g["syn"], g["pruned"], g["dead"]
    assert pruned.sum() == 5 and dead == 5          # floor(20 * 25 / 100) neurons
    post = np.asarray(syn.j[:])
    connected = np.asarray(syn.connected[:])
    assert np.all(connected[pruned[post]] == 0) and np.all(connected[~pruned[post]] == 1)
    assert np.all(np.asarray(syn.w[:])[pruned[post]] == 0)
    assert g["grown"] + g["shrunk"] > 0, "the spines must change over the periods"
    out = capsys.readouterr().out
    assert f"5 of 20 neurons pruned; {int(connected.sum())} of 2000 synapses live" in out
