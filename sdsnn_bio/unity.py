"""Unity builds of standalone projects: the code objects compiled in a few files.

Brian2 (``cpp_standalone``) and brian2cuda (``cuda_standalone``) write one source file per
code object -- about 85 for ``tiny_dense``'s training network, which has a dozen code objects
per layer for the forward pass, the backward pass, Adam and the structural bookkeeping -- and
their makefiles hand each to the compiler on its own. Most of each compilation is the same
headers: measured on the project machine (2026-12-02, user CPU seconds, no compiler cache):

============================  ======================  ==================
tiny_dense's code objects     one file each           two unity files
============================  ======================  ==================
``cpp_standalone`` (g++)      ~38 (0.45 a file)        6
``cuda_standalone`` (nvcc)    ~800 (9-11 a file)       42
============================  ======================  ==================

(``nvcc -time`` of a 10-line resetter: preprocessing 2.0 s, cudafe++ 3.5 s, cicc 2.4 s,
host g++ 3.0 s: Thrust and cuRAND headers.)

A unity file includes its code objects one after another, each inside a namespace of its own,
so that what Brian2's templates put in every file's anonymous namespace (``_brian_mod``,
``_higher_type``, ``memory_recorder``, ...) does not collide:

- every header the members include is included first, at global scope, so that the includes
  repeated inside the namespaces expand to nothing (all of them have include guards);
- the functions that a code object's header declares (``void _run_X();``) are defined again
  at global scope as one-line forwards to the namespaced definition, which is what
  ``network.cpp``/``run.cpp`` call;
- a kernel that one code object's header declares and another launches (brian2cuda's
  thresholders' ``_reset_X``, launched by ``after_run_X``) is made visible in the caller's
  namespace with a using-declaration, and caller and definer go in the same unity file;
- the macros that a code object defines (``_brian_pow``, ``_rand``, ...) are undefined after
  it, so no file sees another's macros;
- each unity file carries a digest of its members' text, so that ``make`` compiles it again
  whenever one of them changes (brian2cuda's makefile has no header dependencies).

Name lookup inside each namespace finds what it found in the separate file, and the compiler
and flags are the same, so the program is the same: a ``cpp_standalone`` build of
``tiny_dense`` compiled both ways wrote byte-identical results (every one of its 157 result
arrays), which ``tests/test_unity.py`` checks; so did the main job's network of then (``mnist5k_local``)
(339 arrays; checked by hand on 2026-12-02, its build 115 s instead of 780 s on the loaded
2-core machine). A construct this cannot wrap (a code object
defining a macro that a header also defines, a header declaring a function with arguments)
raises :class:`UnityBuildError` before anything is compiled, naming the file.

The network's own files (``main``, ``objects``, ``network``, ``rand``, ``run``,
``synapses_classes``) are plain global-scope code that already shares one set of headers and
one program. For ``cpp_standalone`` they are compiled as before (about 7 CPU-s together, 5 of
them ``objects.cpp``'s own arrays: nothing to win). For ``cuda_standalone`` each of them costs
a full parse of the Thrust and cuRAND headers, so they are included one after another into
one more file, ``unity_main.cu``: tiny_dense's six files 21 user-seconds instead of 64
(measured 2026-12-02, nvcc 13.0, project machine), the whole build 63 instead of 119.

:func:`sdsnn_bio.devices.set_up_device` switches it on for ``cpp_standalone`` by default; for
``cuda_standalone`` only when asked (``unity_build=``, ``$SDSNN_UNITY_BUILD``): that build has
been compiled and linked, not yet run on a GPU.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import DeviceError

__all__ = ["UnityBuildError", "unity_sources", "install", "installed", "NAMESPACE_PREFIX"]

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"][^>"\n]+[>"])', re.M)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.M)
_DECL = re.compile(r"^[ \t]*(__global__[ \t]+)?void[ \t]+(\w+)[ \t]*\(([^)]*)\)[ \t]*;", re.M)
_WORD = re.compile(r"\b\w+\b")

#: Prefix of the namespace each code object is compiled in.
NAMESPACE_PREFIX = "_sdsnn_unity_"
#: Source extension of each device's code objects.
EXTENSIONS = {"cpp_standalone": ".cpp", "cuda_standalone": ".cu"}


class UnityBuildError(DeviceError):
    """The generated project has a construct the unity build cannot wrap."""


def _read(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _write_if_changed(path: Path, text: str):
    """Like Brian2's writer: an unchanged file keeps its time stamp (``make`` skips it)."""
    if path.exists() and _read(path) == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _header(source: str) -> str:
    return os.path.splitext(source)[0] + ".h"


def _plan(directory: Path, members: list[str]):
    """Per code object: its text, header declarations, macros; and which kernels it borrows."""
    texts, decls, macros = {}, {}, {}
    header_macros = set()
    for h in list(directory.glob("*.h")) + list(directory.glob("brianlib/*.h")):
        header_macros.update(_DEFINE.findall(_read(h)))
    for f in members:
        texts[f] = _read(directory / f)
        header = directory / _header(f)
        decls[f] = _DECL.findall(_read(header)) if header.exists() else []
        header_macros.update(_DEFINE.findall(_read(header)) if header.exists() else ())
    for f in members:
        own = list(dict.fromkeys(_DEFINE.findall(texts[f])))
        clash = sorted(set(own) & header_macros)
        if clash:
            raise UnityBuildError(
                f"{f} defines macro(s) {clash} that a header also defines: "
                "it cannot be compiled in a unity file (unity_build=False)"
            )
        macros[f] = own
        for is_kernel, name, args in decls[f]:
            if not is_kernel and args.strip() not in ("", "void"):
                raise UnityBuildError(
                    f"{_header(f)} declares {name}({args.strip()}): only functions without "
                    "arguments can be forwarded (unity_build=False)"
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


def _preamble(what: str, members, texts) -> list:
    """A unity file's opening comment: what it holds, and a digest of its members' names and
    text, so that the file changes (and ``make`` compiles it again) when one of them does
    (brian2cuda's makefile has no header dependencies)."""
    digest = hashlib.sha256("\0".join(f + "\0" + t for f, t in zip(members, texts)).encode()).hexdigest()
    return [f"// Unity source written by sdsnn_bio.unity: {what}", "// (see that module's documentation).",
            f"// members' digest: {digest}"]


def _unity_text(members, texts, decls, macros, definer, borrows, index):
    ns = {f: f"{NAMESPACE_PREFIX}{index[f]}" for f in members}
    # definers before their borrowers, so the using-declarations name something declared
    order = sorted(members, key=lambda f: (bool(borrows[f]), f))
    lines = _preamble("the code objects below, each in a namespace of its own", order, [texts[f] for f in order])
    seen = set()
    for f in order:
        for inc in _INCLUDE.findall(texts[f]) + [f'"{_header(f)}"']:
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


def _check_groups(n_groups):
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
        raise UnityBuildError(f"the number of unity files must be an integer >= 1, got {n_groups!r}")


def _main_text(support, directory):
    lines = _preamble("the network's own files, one after another at global scope", support,
                      [_read(directory / f) for f in support])
    lines.extend(f'#include "{f}"' for f in support)
    return "\n".join(lines) + "\n"


def unity_sources(directory, source_files, n_groups: int, ext: str = ".cu",
                  fold_main: bool = False) -> list[str]:
    """Write the unity files of a generated project and return the sources to compile.

    Parameters
    ----------
    directory : str or path
        The project folder (``code_objects/`` inside it).
    source_files : iterable of str
        The sources Brian2 would compile, relative to ``directory``.
    n_groups : int
        How many unity files to make (the number of compilations that can run at once);
        fewer when the code objects do not split that far.
    ext : str
        The code objects' extension (``.cpp`` or ``.cu``); the unity files take it too.
    fold_main : bool
        Also compile the network's own files (the top-level sources with ``ext``:
        ``main``, ``objects``, ``network``, ...) as one file, ``unity_main<ext>``.

    Returns
    -------
    list of str
        The sources that are not code objects (but for those folded into
        ``unity_main<ext>``), then ``unity_0<ext>`` ... and ``unity_main<ext>`` (sorted).
    """
    directory = Path(directory)
    _check_groups(n_groups)
    sources = sorted(set(source_files))
    members = [s for s in sources if s.startswith("code_objects/") and s.endswith(ext)]
    others = [s for s in sources if s not in members and not Path(s).name.startswith("unity_")]
    if not members:
        return others
    names = []
    if fold_main:
        support = [s for s in others if "/" not in s and s.endswith(ext)]
        if support:
            others = [s for s in others if s not in support]
            name = f"unity_main{ext}"
            _write_if_changed(directory / name, _main_text(support, directory))
            names.append(name)
    texts, decls, macros, definer, borrows = _plan(directory, members)
    index = {f: i for i, f in enumerate(members)}
    groups = _groups(members, borrows, definer, n_groups)
    for g, group in enumerate(groups):
        name = f"unity_{g}{ext}"
        _write_if_changed(directory / name, _unity_text(group, texts, decls, macros, definer, borrows, index))
        names.append(name)
    for stale in directory.glob(f"unity_*{ext}"):
        if stale.name not in names:
            stale.unlink()
    return others + sorted(names)


#: Unity files per build of each device when switched on (absent: off). Set by :func:`install`.
_N_GROUPS = {}
_PATCHED = set()


def _device_class(device):
    if device == "cpp_standalone":
        from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

        return CPPStandaloneDevice
    from brian2cuda.device import CUDAStandaloneDevice

    return CUDAStandaloneDevice


def install(device: str, n_groups):
    """Compile the next builds of ``device`` as ``n_groups`` unity files (``None``: one file
    per code object, as Brian2 does).

    The device class's ``generate_makefile`` is wrapped once: when switched on, the writer's
    source list is replaced by :func:`unity_sources` just before the makefile is written.
    """
    if device not in EXTENSIONS:
        raise UnityBuildError(f"unity builds are for {sorted(EXTENSIONS)}, not {device!r}")
    if n_groups is None:
        _N_GROUPS.pop(device, None)
        return
    _check_groups(n_groups)
    _N_GROUPS[device] = n_groups
    if device in _PATCHED:
        return
    cls = _device_class(device)
    original = cls.generate_makefile
    ext = EXTENSIONS[device]

    def generate_makefile(self, writer, *args, **kwargs):
        n = _N_GROUPS.get(device)
        if n is not None:
            writer.source_files = set(unity_sources(writer.project_dir, writer.source_files, n, ext,
                                                    fold_main=device == "cuda_standalone"))
        return original(self, writer, *args, **kwargs)

    generate_makefile.__wrapped__ = original
    cls.generate_makefile = generate_makefile
    _PATCHED.add(device)


def installed(device: str) -> int | None:
    """The number of unity files the next build of ``device`` makes, or ``None``."""
    return _N_GROUPS.get(device)


def reset():
    """Every device back to Brian2's one file per code object."""
    _N_GROUPS.clear()
