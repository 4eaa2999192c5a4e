"""read_archive.py ROOT: what insights-core's own parsers read from a sos archive.

ROOT is an extracted sos archive directory or the archive file itself (.tar.xz/.tar.gz/.tar).
Runs insights-core's specs for sos archives and the parsers named below, and prints one JSON
object: for each parser either its values or {"error": ...}. The Rust test
tests/insights_real.rs compares the values with the live ground truth of the fixture set.

Filtering is turned off (INSIGHTS_FILTERS_ENABLED=false) before insights is imported: with
filters on, insights keeps only the lines of filterable specs (dmesg, ps) that some loaded rule
asked for, and no rule is loaded here.
"""
import json
import os
import sys

os.environ["INSIGHTS_FILTERS_ENABLED"] = "false"

import insights  # noqa: E402
from insights.core import dr  # noqa: E402

dr.load_components("insights.specs.default")
dr.load_components("insights.specs.sos_archive")

from insights.parsers.cmdline import CmdLine  # noqa: E402
from insights.parsers.cpuinfo import CpuInfo  # noqa: E402
from insights.parsers.dmesg import DmesgLineList  # noqa: E402
from insights.parsers.lsmod import LsMod  # noqa: E402
from insights.parsers.meminfo import MemInfo  # noqa: E402
from insights.parsers.ps import PsAlxwww, PsAuxww  # noqa: E402
from insights.parsers.uname import Uname  # noqa: E402


def uname(p):
    return {"kernel": p.kernel, "nodename": p.nodename, "machine": p.machine}


def meminfo(p):
    return {"total": p.total, "free": p.free, "available": p.available}


def lsmod(p):
    return {"modules": {name: p[name] for name in p.data}}


def ps(p):
    rows = []
    for r in p.data:
        rows.append({k: r.get(k) for k in ("PID", "PPID", "USER", "UID", "STAT", "COMMAND", "COMMAND_NAME")})
    return {"rows": rows}


def dmesg(p):
    return {"lines": list(p.lines)}


def cpuinfo(p):
    return {"cpu_count": p.cpu_count, "model_name": p.model_name, "vendor": p.vendor}


def cmdline(p):
    return {"cmdline": p.cmdline, "data": {k: v for k, v in p.data.items()}}


PARSERS = [
    ("Uname", Uname, uname),
    ("MemInfo", MemInfo, meminfo),
    ("LsMod", LsMod, lsmod),
    ("PsAuxww", PsAuxww, ps),
    ("PsAlxwww", PsAlxwww, ps),
    ("DmesgLineList", DmesgLineList, dmesg),
    ("CpuInfo", CpuInfo, cpuinfo),
    ("CmdLine", CmdLine, cmdline),
]


def main():
    root = sys.argv[1]
    broker = insights.run([cls for _, cls, _ in PARSERS], root=root)
    out = {"contexts": sorted(type(v).__name__ for v in broker.instances.values()
                              if type(v).__name__.endswith("Context"))}
    for name, cls, show in PARSERS:
        if cls in broker:
            try:
                out[name] = show(broker[cls])
            except Exception as e:  # a parser object without the attribute we expect
                out[name] = {"error": f"{type(e).__name__}: {e}"}
        elif cls in broker.exceptions:
            out[name] = {"error": "; ".join(f"{type(e).__name__}: {e}" for e in broker.exceptions[cls])}
        else:
            missing = broker.missing_requirements.get(cls)
            out[name] = {"error": f"missing: {missing}"}
    json.dump(out, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
