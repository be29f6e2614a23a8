"""Unity builds (sdsnn_bio.unity): on a small project written here, and on a real network.

The project has the constructs of brian2cuda's code objects that a unity file must keep apart:
the same helper names in every file's anonymous namespace, a file-local macro that another file
uses as a function name, a kernel declared in one code object's header and launched by another,
and ``void _run_X()`` functions called from the network's own file. ``__global__`` is defined
away so that g++ compiles it in a second: the per-file program and the unity program must print
the same.
"""

import os
import shutil
import subprocess

import pytest

from sdsnn_bio.devices import unity_files
from sdsnn_bio.errors import DeviceError
from sdsnn_bio.unity import NAMESPACE_PREFIX, UnityBuildError, install, unity_sources

FILES = {
    "objects.h": "#ifndef OBJ_H\n#define OBJ_H\nextern long total;\n#endif\n",
    "objects.cu": '#include "objects.h"\nlong total = 0;\n',
    "code_objects/a.h": (
        "#ifndef A_H\n#define A_H\nvoid _run_a();\nvoid _debugmsg_a();\n"
        "__global__ void _reset_a(long*);\n#endif\n"
    ),
    "code_objects/a.cu": (
        '#include "code_objects/a.h"\n#include "objects.h"\n#include <cstdio>\n'
        "namespace { long helper(long x) { return x + 1; } }\n"
        "#define _rand(i) ((i) * 2)\n"
        "__global__ void _reset_a(long* p) { *p = helper(_rand(3)); }\n"
        "void _run_a() { long v; _reset_a(&v); total += v; }\n"
        'void _debugmsg_a() { std::printf("a %ld\\n", total); }\n'
    ),
    "code_objects/b.h": "#ifndef B_H\n#define B_H\nvoid _run_b();\n#endif\n",
    "code_objects/b.cu": (
        '#include "code_objects/b.h"\n#include "objects.h"\n'
        "namespace { long helper(long x) { return x * 10; }\n"
        "            long _rand(long i) { return i + 100; } }\n"
        "void _run_b() { total += helper(_rand(1)); }\n"
    ),
    "code_objects/after_run_a.h": "#ifndef AR_H\n#define AR_H\nvoid _after_run_a();\n#endif\n",
    "code_objects/after_run_a.cu": (
        '#include "code_objects/after_run_a.h"\n#include "code_objects/a.h"\n#include "objects.h"\n'
        "namespace { long helper(long x) { return -x; } }\n"
        "void _after_run_a() { long v; _reset_a(&v); total += helper(v) * 1000; }\n"
    ),
    "code_objects/c.h": "#ifndef C_H\n#define C_H\nvoid _run_c();\n#endif\n",
    "code_objects/c.cu": (
        '#include "code_objects/c.h"\n#include "objects.h"\n#include <vector>\n'
        "namespace { std::vector<long> memory_recorder{7}; }\n"
        "void _run_c() { total += memory_recorder[0] * 100000; }\n"
    ),
    "main.cu": (
        '#include "objects.h"\n#include "code_objects/a.h"\n#include "code_objects/b.h"\n'
        '#include "code_objects/after_run_a.h"\n#include "code_objects/c.h"\n#include <cstdio>\n'
        'int main() { _run_a(); _run_b(); _after_run_a(); _run_c(); _debugmsg_a();\n'
        '  std::printf("%ld\\n", total); return 0; }\n'
    ),
}
CODE_OBJECTS = ["code_objects/a.cu", "code_objects/after_run_a.cu", "code_objects/b.cu", "code_objects/c.cu"]
SOURCES = CODE_OBJECTS + ["main.cu", "objects.cu"]
#: a: 3*2+1 = 7; b: (1+100)*10 = 1010; after_run_a: -7*1000; c: 7*100000
EXPECTED = 7 + 1010 - 7000 + 700000


def _project(tmp_path):
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _compile_and_run(directory, sources):
    exe = directory / "prog"
    subprocess.run(
        ["g++", "-std=c++17", "-D__global__=", "-x", "c++", "-I", str(directory)]
        + [str(directory / s) for s in sources] + ["-o", str(exe)],
        check=True, capture_output=True, text=True,
    )
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout


needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


@needs_gxx
@pytest.mark.parametrize("n_groups", [1, 2, 3])
def test_unity_program_prints_what_the_per_file_program_prints(tmp_path, n_groups):
    d = _project(tmp_path)
    per_file = _compile_and_run(d, SOURCES)
    assert per_file.split() == ["a", str(EXPECTED), str(EXPECTED)]
    sources = unity_sources(d, SOURCES, n_groups)
    assert sources[:2] == ["main.cu", "objects.cu"]
    unity = sources[2:]
    # a and after_run_a (which launches a's kernel) always share a file
    assert 1 <= len(unity) <= min(n_groups, 3)
    assert _compile_and_run(d, sources) == per_file
    # each code object in exactly one unity file, in a namespace of its own
    texts = "".join((d / u).read_text() for u in unity)
    for co in CODE_OBJECTS:
        assert texts.count(f'#include "{co}"') == 1
    assert texts.count(f"\nnamespace {NAMESPACE_PREFIX}") == len(CODE_OBJECTS)
    holder = [u for u in unity if '#include "code_objects/a.cu"' in (d / u).read_text()]
    assert '#include "code_objects/after_run_a.cu"' in (d / holder[0]).read_text()


@needs_gxx
def test_the_networks_own_files_fold_into_one_more_file(tmp_path):
    """fold_main (cuda_standalone's setting): main/objects/... in unity_main; files in a
    subfolder (brianlib) stay on their own; the same program."""
    d = _project(tmp_path)
    (d / "brianlib").mkdir()
    (d / "brianlib/extra.cu").write_text("long extra_unused() { return 3; }\n")
    per_file = _compile_and_run(d, SOURCES + ["brianlib/extra.cu"])
    sources = unity_sources(d, SOURCES + ["brianlib/extra.cu"], 2, fold_main=True)
    assert sources == ["brianlib/extra.cu", "unity_0.cu", "unity_1.cu", "unity_main.cu"]
    main = (d / "unity_main.cu").read_text()
    assert [line for line in main.splitlines() if line.startswith("#include")] == [
        '#include "main.cu"', '#include "objects.cu"']
    assert _compile_and_run(d, sources) == per_file
    # rewritten when one of its files changes, not otherwise; gone when not asked for
    os.utime(d / "unity_main.cu", (1_000_000, 1_000_000))
    unity_sources(d, SOURCES, 2, fold_main=True)
    assert (d / "unity_main.cu").stat().st_mtime == 1_000_000
    (d / "objects.cu").write_text(FILES["objects.cu"].replace("= 0", "= 1"))
    unity_sources(d, SOURCES, 2, fold_main=True)
    assert (d / "unity_main.cu").read_text() != main
    assert "unity_main.cu" not in unity_sources(d, SOURCES, 2)
    assert not (d / "unity_main.cu").exists()


def test_unity_files_are_rewritten_only_when_a_member_changes(tmp_path):
    d = _project(tmp_path)
    (name,) = unity_sources(d, SOURCES, 1)[2:]
    first = (d / name).read_text()
    os.utime(d / name, (1_000_000, 1_000_000))
    unity_sources(d, SOURCES, 1)
    assert (d / name).stat().st_mtime == 1_000_000          # make will not recompile it
    (d / "code_objects/b.cu").write_text(FILES["code_objects/b.cu"].replace("* 10", "* 11"))
    unity_sources(d, SOURCES, 1)
    assert (d / name).read_text() != first and (d / name).stat().st_mtime != 1_000_000
    # fewer files than before: the stale one is removed
    assert len(unity_sources(d, SOURCES, 3)) == 5
    unity_sources(d, SOURCES, 1)
    assert sorted(p.name for p in d.glob("unity_*.cu")) == ["unity_0.cu"]


def test_constructs_it_cannot_wrap_are_refused_naming_the_file(tmp_path):
    d = _project(tmp_path)
    (d / "objects.h").write_text(FILES["objects.h"].replace("#endif", "#define _rand(i) (i)\n#endif"))
    with pytest.raises(UnityBuildError, match=r"code_objects/a\.cu defines macro\(s\) \['_rand'\]"):
        unity_sources(d, SOURCES, 2)
    d = _project(tmp_path / "args")
    (d / "code_objects/b.h").write_text("void _run_b(int n);\n")
    with pytest.raises(UnityBuildError, match=r"code_objects/b\.h declares _run_b\(int n\)"):
        unity_sources(d, SOURCES, 2)
    with pytest.raises(UnityBuildError, match="integer >= 1"):
        unity_sources(d, SOURCES, 0)


def test_unity_build_setting(monkeypatch):
    monkeypatch.delenv("SDSNN_UNITY_BUILD", raising=False)
    cores = os.cpu_count() or 1
    assert unity_files("cpp_standalone") == cores and unity_files("cuda_standalone") is None
    assert unity_files("cpp_standalone", False) is None and unity_files("cuda_standalone", 3) == 3
    assert unity_files("cuda_standalone", True) == cores
    monkeypatch.setenv("SDSNN_UNITY_BUILD", "4")
    assert unity_files("cpp_standalone") == unity_files("cuda_standalone") == 4
    monkeypatch.setenv("SDSNN_UNITY_BUILD", "off")
    assert unity_files("cpp_standalone") is None and unity_files("cpp_standalone", 2) == 2
    monkeypatch.setenv("SDSNN_UNITY_BUILD", "lots")
    with pytest.raises(DeviceError, match=r"\$SDSNN_UNITY_BUILD must be .* got 'lots'"):
        unity_files("cpp_standalone")
    with pytest.raises(DeviceError, match="unity_build must be"):
        unity_files("cpp_standalone", -1)
    with pytest.raises(UnityBuildError, match="not 'runtime'"):
        install("runtime", 2)


@pytest.mark.standalone
def test_cpp_standalone_unity_build_writes_the_same_results(tmp_path):
    """tiny_dense's training network built by Brian2's makefile (one g++ call per code object)
    and as two unity files: the two binaries write byte-identical results, every array."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.devices import reset_brian, set_up_device
    from sdsnn_bio.network import SDSNNNetwork

    cfg = load_config(find_model("tiny_dense"))
    results = {}
    for unity in (False, 2):
        reset_brian()
        build = tmp_path / f"unity_{unity}"
        set_up_device("cpp_standalone", str(build), unity_build=unity)
        SDSNNNetwork(cfg, 2, 10, device="cpp_standalone", directory=str(build)).build(compile=True)
        srcs = (build / "makefile").read_text().split("SRCS = ", 1)[1].split("\n", 1)[0].split()
        co = [s for s in srcs if s.startswith("code_objects/")]
        assert (co == []) == bool(unity) and (len(co) > 50) != bool(unity)
        assert sorted(s for s in srcs if s.startswith("unity_")) == (["unity_0.cpp", "unity_1.cpp"] if unity else [])
        subprocess.run(["./main"], cwd=build, check=True, capture_output=True)
        results[unity] = {
            p.name: p.read_bytes() for p in (build / "results").iterdir() if p.name != "last_run_info.txt"
        }
    reset_brian()
    assert len(results[False]) > 100 and sorted(results[2]) == sorted(results[False])
    differ = [name for name in results[False] if results[2][name] != results[False][name]]
    assert not differ, differ
