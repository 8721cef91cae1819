"""torchvision's compiled operators on torch's CPU-only build, for the bench's peer.

The PyPI wheel of torchvision links its compiled operators (NMS, RoIAlign, ...) against the CUDA build of torch
(libcudart, libc10_cuda, libtorch_cuda). torch's CPU-only build is 190 MB instead of several GB of CUDA packages,
but with it those operators do not load, and torchvision's Mask R-CNN then fails (NMS has no fallback) or runs
RoIAlign in Python (30x slower), which would make the peer look slower than it is. ``install_cpu_ops`` builds
small stand-ins for the CUDA libraries the wheel names (each CUDA entry point aborts if ever called; the
fat-binary registration calls made while the library loads do nothing) and loads them first, so the wheel's own
C++ CPU kernels load and run unchanged. On the CUDA build of torch nothing is done.

Failure modes: ``PeerUnavailable`` with a sentence (torchvision missing, no C compiler, nm/readelf missing).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import subprocess
from pathlib import Path

# Called by the CUDA runtime's module constructors while the library loads: they must return, not abort.
REGISTRATION = (
    "__cudaRegisterFatBinary",
    "__cudaRegisterFatBinaryEnd",
    "__cudaRegisterFunction",
    "__cudaRegisterVar",
    "__cudaUnregisterFatBinary",
    "__cudaInitModule",
)


class PeerUnavailable(RuntimeError):
    """The peer cannot run here; the message says what is missing."""


def install_cpu_ops(cache: Path) -> str:
    """Make torchvision's compiled CPU operators load on torch's CPU-only build; call before importing it.

    ``cache`` is a folder for the stand-ins (built once per torchvision build, milliseconds). Returns a line
    saying which operators the peer runs.
    """
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        raise PeerUnavailable("torchvision is not installed (make bench-deps installs it)")
    if torch.version.cuda is not None:
        return "torchvision's compiled operators"
    compiled = next(Path(spec.origin).parent.glob("_C*.so"), None)
    if compiled is None:
        raise PeerUnavailable("this torchvision has no compiled operators (_C.so)")
    for library in _stand_ins(compiled, cache):
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    return "torchvision's compiled CPU operators (its CUDA entry points stubbed, never called)"


def _stand_ins(compiled: Path, cache: Path) -> list[Path]:
    """The stand-in libraries for the CUDA libraries ``compiled`` needs, built into ``cache`` if absent."""
    dynamic = _tool_lines(["readelf", "-d", str(compiled)])
    names = [line.split("[")[1].rstrip("]") for line in dynamic if "(NEEDED)" in line and "cuda" in line]
    undefined = _tool_lines(["nm", "-D", "--undefined-only", str(compiled)])
    symbols = sorted({line.split()[-1].split("@")[0] for line in undefined if "cuda" in line.lower()})
    folder = cache / f"torchvision-cuda-stand-ins-{hashlib.sha256(compiled.read_bytes()).hexdigest()[:16]}"
    libraries = [folder / name for name in names]
    if all(library.is_file() for library in libraries):
        return libraries
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "stand_ins.c"
    source.write_text(_stand_in_source(symbols))
    for library in libraries:
        # Each stand-in defines every symbol under its own version name: references to
        # cudaX@libcudart.so.13 need that version, the C++ ones need none.
        script = folder / f"{library.name}.map"
        script.write_text(f"{library.name} {{ global: *; }};\n")
        _compile(source, library, script)
    return libraries


def _stand_in_source(symbols: list[str]) -> str:
    lines = ["#include <stdlib.h>", "static void *handle[8];"]
    for symbol in symbols:
        if symbol in REGISTRATION:
            lines.append(f"void *{symbol}(void) {{ return handle; }}")
        elif symbol.endswith("allocatorE"):
            lines.append(f"void *{symbol}[8];")  # a data object: the CUDA caching allocator's pointer
        else:
            lines.append(f"void {symbol}(void) {{ abort(); }}")
    return "\n".join(lines) + "\n"


def _compile(source: Path, library: Path, script: Path) -> None:
    command = [
        "cc", "-shared", "-fPIC", f"-Wl,-soname,{library.name}", f"-Wl,--version-script={script}",
        "-o", str(library), str(source),
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PeerUnavailable(
            "no C compiler (cc) to build the CUDA stand-ins torchvision's operators need"
        ) from exc
    if proc.returncode != 0:
        raise PeerUnavailable(f"building the CUDA stand-ins failed: {proc.stderr.strip()[-300:]}")


def _tool_lines(command: list[str]) -> list[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PeerUnavailable(f"{command[0]} could not read torchvision's operators: {exc}") from exc
