"""Run in a subprocess with lark and llvmlite blocked: what a GPU machine can do with a carried cache.

``python -m tests.runtime.carried_child MODE`` prints one JSON line.  MODE ``launch``: import lowbit and
lowbit.runtime, find vector_add's specialisations in $LOWBIT_CACHE_DIR by the keys stored when they were built,
and launch them through the runtime on the stand-in driver (not executed: the emulator needs lark).  MODE
``miss``: ask for a specialisation that was never built.
"""

from __future__ import annotations

import json
import sys


class _Block:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in ("lark", "llvmlite"):
            raise ImportError(f"blocked for this test: {name}")


sys.meta_path.insert(0, _Block())

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import lowbit  # noqa: E402
import lowbit.runtime  # noqa: E402
from lowbit.compiler.specs import compiler_status  # noqa: E402
from lowbit.errors import LaunchError  # noqa: E402
from lowbit.runtime.driver import use_driver  # noqa: E402
from tests.runtime.fake_driver import FakeDriver  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main(mode: str) -> dict:
    spec = importlib.util.spec_from_file_location("ex01", ROOT / "examples" / "01_vector_add.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    out: dict = {"compiler": list(compiler_status())}
    if mode == "miss":
        try:
            lowbit.compile(ex.vector_add, arch="sm_90", BLOCK=64)
        except LaunchError as exc:
            out["error"] = str(exc)
    else:
        ck = lowbit.compile(ex.vector_add, arch="sm_90")
        out["key"], out["spec"] = ck.key, ck.spec
        fake = FakeDriver(cc=(9, 0), run=False)
        with use_driver(fake):
            d = [lowbit.runtime.DeviceArray.from_numpy(np.zeros(300, np.float32)) for _ in range(3)]
            try:
                ex.vector_add[(3,)](*d, 300)  # the div(16) variant (device buffers are aligned), carried
                out["backend"] = ex.vector_add.last_launch.backend
                out["raw"] = [b.hex() for b in fake.launches[-1]["raw"]]
                out["ptrs"] = [a.ptr for a in d]
            except LaunchError as exc:
                out["error"] = str(exc)
    out["blocked_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("lark", "llvmlite"))
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
