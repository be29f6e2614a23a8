"""Unity build of a ``cuda_standalone`` project: the code objects compiled in a few files.

brian2cuda writes one ``.cu`` file per code object (about 90 for ``tiny_dense``'s training
network) and its makefile hands each to ``nvcc`` on its own. Each of them includes
``objects.h`` (Thrust, cuRAND), so every file costs 9-11 CPU-seconds of which about nine are
spent parsing and compiling the same headers (measured with ``nvcc -time`` on the project
machine, 2026-12-02: preprocessing 2.0 s, cudafe++ 3.5 s, cicc 2.4 s, host g++ 3.0 s for a
10-line resetter). Compiled as two unity files of 45 code objects each, the same code costs
about 42 CPU-seconds instead of about 800.

A unity file includes its code objects one after another, each inside a namespace of its own,
so that what brian2cuda's templates put in every file's anonymous namespace (``_brian_mod``,
``_higher_type``, ``memory_recorder``, ...) does not collide:

- every header the members include is included first, at global scope, so that the includes
  repeated inside the namespaces expand to nothing (all of them have include guards);
- the functions that a code object's header declares (``void _run_X();``) are defined again
  at global scope as one-line forwards to the namespaced definition, which is what
  ``network.cu`` and ``run.cu`` call;
- a kernel that one code object's header declares and another calls (the thresholders'
  ``_reset_X``, launched by ``after_run_X``) is made visible in the caller's namespace with a
  using-declaration, and caller and definer go in the same unity file;
- the macros that a code object defines (``_brian_pow``, ``_rand``, ...) are undefined after
  it, so no file sees another's macros;
- each unity file carries a digest of its members' text, so that ``make`` (whose rule knows
  only ``unity_N.cu``) compiles it again whenever one of them changes.

Name lookup inside each namespace finds what it found in the separate file, so the program
is the same; a construct this cannot wrap (a code object defining a macro that a header also
defines, a header declaring a function with arguments) raises :class:`UnityBuildError` before
anything is compiled, naming the file. The network's own files (``main.cu``, ``objects.cu``,
``network.cu``, ...) are compiled as before.

Used by :func:`sdsnn_bio.devices.configure_cuda` with ``unity_build=True`` (or
``SDSNN_CUDA_UNITY=1``); the test suite compiles the CUDA project this way. It has been
compiled and linked, not yet run on a GPU: brian2cuda's per-file build stays the default.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import DeviceError

__all__ = ["UnityBuildError", "unity_sources", "install"]

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"][^>"\n]+[>"])', re.M)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.M)
_DECL = re.compile(r"^[ \t]*(__global__[ \t]+)?void[ \t]+(\w+)[ \t]*\(([^)]*)\)[ \t]*;", re.M)
_WORD = re.compile(r"\b\w+\b")

#: Prefix of the namespace each code object is compiled in.
NAMESPACE_PREFIX = "_sdsnn_unity_"


class UnityBuildError(DeviceError):
    """The generated CUDA project has a construct the unity build cannot wrap."""


def _read(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _write_if_changed(path: Path, text: str):
    """Like brian2cuda's writer: an unchanged file keeps its time stamp (``make`` skips it)."""
    if path.exists() and _read(path) == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _plan(directory: Path, members: list[str]):
    """Per code object: its text, header declarations, macros; and which kernels it borrows."""
    texts, decls, macros = {}, {}, {}
    header_macros = set()
    for h in list(directory.glob("*.h")) + list(directory.glob("brianlib/*.h")):
        header_macros.update(_DEFINE.findall(_read(h)))
    for f in members:
        texts[f] = _read(directory / f)
        header = directory / (f[:-3] + ".h")
        decls[f] = _DECL.findall(_read(header)) if header.exists() else []
        header_macros.update(_DEFINE.findall(_read(header)) if header.exists() else ())
    for f in members:
        own = list(dict.fromkeys(_DEFINE.findall(texts[f])))
        clash = sorted(set(own) & header_macros)
        if clash:
            raise UnityBuildError(
                f"{f} defines macro(s) {clash} that a header also defines: "
                "it cannot be compiled in a unity file (set unity_build=False)"
            )
        macros[f] = own
        for is_kernel, name, args in decls[f]:
            if not is_kernel and args.strip() not in ("", "void"):
                raise UnityBuildError(
                    f"{f[:-3]}.h declares {name}({args.strip()}): only functions without "
                    "arguments can be forwarded (set unity_build=False)"
                )
    definer = {name: f for f in members for is_kernel, name, _ in decls[f] if is_kernel}
    borrows = {
        f: sorted({w for w in _WORD.findall(texts[f]) if definer.get(w, f) != f}) for f in members
    }
    return texts, decls, macros, definer, borrows


def _groups(members, borrows, definer, n_groups):
    """Split the code objects into ``n_groups`` files, each borrower with its kernels' definers.

    Connected components of the "borrows a kernel from" relation stay together; components are
    dealt out largest first to the file with the fewest members, which keeps the files even.
    """
    parent = {f: f for f in members}

    def root(f):
        while parent[f] != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    for f in members:
        for name in borrows[f]:
            parent[root(f)] = root(definer[name])
    components = {}
    for f in members:
        components.setdefault(root(f), []).append(f)
    groups = [[] for _ in range(max(1, min(n_groups, len(components))))]
    for comp in sorted(components.values(), key=lambda c: (-len(c), c[0])):
        min(groups, key=len).extend(comp)
    return [sorted(g) for g in groups if g]


def _unity_text(members, texts, decls, macros, definer, borrows, index):
    ns = {f: f"{NAMESPACE_PREFIX}{index[f]}" for f in members}
    # definers before their borrowers, so the using-declarations name something declared
    order = sorted(members, key=lambda f: (bool(borrows[f]), f))
    digest = hashlib.sha256("\0".join(f + "\0" + texts[f] for f in order).encode()).hexdigest()
    lines = [
        "// Unity source written by sdsnn_bio.cuda_unity: the code objects below, each in a",
        "// namespace of its own (see that module's documentation).",
        f"// members' digest: {digest}",
    ]
    seen = set()
    for f in order:
        header = f[:-3] + ".h"
        for inc in _INCLUDE.findall(texts[f]) + [f'"{header}"']:
            if inc not in seen:
                seen.add(inc)
                lines.append(f"#include {inc}")
    for f in order:
        lines.append(f"namespace {ns[f]} {{")
        lines.extend(f"using ::{ns[definer[name]]}::{name};" for name in borrows[f])
        lines.append(f'#include "{f}"')
        lines.append(f"}}  // namespace {ns[f]}")
        lines.extend(f"#undef {m}" for m in macros[f])
        lines.extend(
            f"void {name}() {{ {ns[f]}::{name}(); }}" for is_kernel, name, _ in decls[f] if not is_kernel
        )
    return "\n".join(lines) + "\n"


def unity_sources(directory, source_files, n_groups: int) -> list[str]:
    """Write the unity files of a generated project and return the sources to compile.

    Parameters
    ----------
    directory : str or path
        The project folder (``code_objects/`` inside it).
    source_files : iterable of str
        The sources brian2cuda would compile, relative to ``directory``.
    n_groups : int
        How many unity files to make (the number of compilations that can run at once);
        fewer when the code objects do not split that far.

    Returns
    -------
    list of str
        The sources that are not code objects, then ``unity_0.cu`` ... (sorted).
    """
    directory = Path(directory)
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
        raise UnityBuildError(f"the number of unity files must be an integer >= 1, got {n_groups!r}")
    sources = sorted(set(source_files))
    members = [s for s in sources if s.startswith("code_objects/") and s.endswith(".cu")]
    others = [s for s in sources if s not in members and not Path(s).name.startswith("unity_")]
    if not members:
        return others
    texts, decls, macros, definer, borrows = _plan(directory, members)
    index = {f: i for i, f in enumerate(members)}
    groups = _groups(members, borrows, definer, n_groups)
    names = []
    for g, group in enumerate(groups):
        name = f"unity_{g}.cu"
        _write_if_changed(directory / name, _unity_text(group, texts, decls, macros, definer, borrows, index))
        names.append(name)
    for stale in directory.glob("unity_*.cu"):
        if stale.name not in names:
            stale.unlink()
    return others + names


#: Unity files per build when switched on (``None``: off). Set by :func:`install`.
_N_GROUPS = None
_PATCHED = False


def install(n_groups):
    """Compile the next ``cuda_standalone`` builds as ``n_groups`` unity files (``None``: as
    brian2cuda does, one file per code object).

    brian2cuda's ``generate_makefile`` is wrapped once: when switched on, the writer's
    source list is replaced by :func:`unity_sources` just before the makefile is written.
    """
    global _N_GROUPS, _PATCHED
    if n_groups is not None and (isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1):
        raise UnityBuildError(f"the number of unity files must be an integer >= 1, got {n_groups!r}")
    _N_GROUPS = n_groups
    if _PATCHED or n_groups is None:
        return
    from brian2cuda.device import CUDAStandaloneDevice

    original = CUDAStandaloneDevice.generate_makefile

    def generate_makefile(self, writer, *args, **kwargs):
        if _N_GROUPS is not None:
            writer.source_files = set(unity_sources(writer.project_dir, writer.source_files, _N_GROUPS))
        return original(self, writer, *args, **kwargs)

    generate_makefile.__wrapped__ = original
    CUDAStandaloneDevice.generate_makefile = generate_makefile
    _PATCHED = True


def installed() -> int | None:
    """The number of unity files the next build makes, or ``None`` (per-file build)."""
    return _N_GROUPS
