#!/usr/bin/env python3
"""gates.py - the CUDA backend's compile-time gates, checked on the built plugin without a GPU.

1. ptxas already refused spills and local memory at build time (-Xptxas -warn-spills,
   -warn-lmem-usage,-Werror for every architecture); here the resource usage of every kernel of
   every architecture in the fatbinary is read back (cuobjdump -res-usage) and held to a budget:
   STACK 0, LOCAL 0, no static shared memory beyond the 1 KiB sm_90 reserves (kernels use dynamic
   shared memory only), registers <= 128 per thread (<= 255 for the Tensor-Core GEMMs).
2. SASS (cuobjdump -sass, which calls nvdisasm): no LDL/STL anywhere; the Tensor-Core W4A16 GEMM
   contains HMMA (HMMA.1688 on sm_75, HMMA.16816 on sm_80+), LDSM, and LDGSTS (cp.async) on sm_80+.
3. The fatbinary holds SASS for sm_75/80/86/89/90 and PTX for newer devices.

Usage: gates.py PLUGIN.so [TOOLS_BIN_DIR] (default: $AWQ_CUDA_TOOLS, see scripts/fetch_cuda_tools.sh). Prints one line per check and "N passed, M failed".
Exit 0 when all pass, 1 otherwise, 77 (skip) when the plugin or the tools are absent and
AWQ_REQUIRE_CUDA_GATES is not 1.
"""
import os
import re
import subprocess
import sys

ARCHS = ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90"]
TC_RE = re.compile(r"w4_gemm_tc|gemm_w4_tc|w4_tc_|tc_gemm")  # the fused Tensor-Core W4A16 kernel(s)
REG_BUDGET_TC = 255
REG_BUDGET = 128
SHARED_RESERVED = 1024

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(("PASS " if ok else "FAIL ") + what)
    return ok


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
        return dict(zip(names, out.splitlines()))
    except OSError:
        return {n: n for n in names}


def run(tools, *args):
    env = dict(os.environ, PATH=tools + os.pathsep + os.environ.get("PATH", ""))
    r = subprocess.run([os.path.join(tools, "cuobjdump")] + list(args), capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("cuobjdump %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def short(dm):
    m = re.match(r"(?:void )?([A-Za-z0-9_:]+)", dm)
    return m.group(1) if m else dm


def main():
    require = os.environ.get("AWQ_REQUIRE_CUDA_GATES") == "1"
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    lib = sys.argv[1]
    tools = sys.argv[2] if len(sys.argv) == 3 else os.environ.get("AWQ_CUDA_TOOLS", "")
    if not os.path.exists(lib) or not os.path.exists(os.path.join(tools, "cuobjdump")):
        print("SKIP: %s or %s/cuobjdump missing" % (lib, tools))
        return 1 if require else 77

    # ---- resource usage per architecture -------------------------------------------------
    res = run(tools, "-res-usage", lib)
    arch = None
    usage = {}  # (arch, mangled) -> dict
    fn = None
    for line in res.splitlines():
        m = re.match(r"\s*arch = (sm_\d+)", line)
        if m:
            arch = m.group(1)
            continue
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            fn = m.group(1)
            continue
        if fn and "REG:" in line:
            usage[(arch, fn)] = {k: int(v) for k, v in re.findall(r"(\w+(?:\[\d\])?):(\d+)", line)}
            fn = None
    names = sorted({f for _, f in usage})
    dm = demangle(names)
    seen_archs = sorted({a for a, _ in usage})
    for a in ARCHS:
        check(a in seen_archs, "fatbinary has SASS for %s" % a)
    ptx = run(tools, "-lptx", lib)
    check(re.search(r"(compute|sm)_90\S*\.ptx|compute_90", ptx) is not None,
          "fatbinary has PTX of sm_90 for newer devices (%s)" % ", ".join(re.findall(r"\S+\.ptx", ptx)))

    print("\n%-44s %-6s %4s %6s %5s %5s" % ("kernel", "arch", "REG", "SHARED", "STACK", "LOCAL"))
    worst = {}
    for (a, f), u in sorted(usage.items(), key=lambda kv: (short(dm[kv[0][1]]), kv[0][0])):
        print("%-44s %-6s %4d %6d %5d %5d" % (short(dm[f])[:44], a, u.get("REG", 0), u.get("SHARED", 0),
                                               u.get("STACK", 0), u.get("LOCAL", 0)))
        budget = REG_BUDGET_TC if TC_RE.search(dm[f]) else REG_BUDGET
        bad = []
        if u.get("STACK", 0) != 0:
            bad.append("stack %d" % u["STACK"])
        if u.get("LOCAL", 0) != 0:
            bad.append("local %d" % u["LOCAL"])
        if u.get("SHARED", 0) > SHARED_RESERVED:
            bad.append("static shared %d" % u["SHARED"])
        if u.get("REG", 0) > budget:
            bad.append("%d registers > %d" % (u["REG"], budget))
        key = short(dm[f])
        worst.setdefault(key, []).extend(["%s: %s" % (a, b) for b in bad])
    print()
    for k in sorted(worst):
        check(not worst[k], "budget %s%s" % (k, (": " + "; ".join(worst[k])) if worst[k] else ""))

    # ---- SASS ---------------------------------------------------------------------------
    n_tc = 0
    for a in ARCHS:
        sass = run(tools, "-sass", "-arch", a, lib)
        funcs = {}
        cur = None
        for line in sass.splitlines():
            m = re.match(r"\s*Function : (\S+)", line)
            if m:
                cur = m.group(1)
                funcs[cur] = []
                continue
            if cur:
                funcs[cur].append(line)
        lmem = [short(dm.get(f, f)) for f, body in funcs.items()
                if any(re.search(r"\b(LDL|STL)\b", l) for l in body)]
        check(not lmem, "%s: no LDL/STL in %d kernels%s" % (a, len(funcs), (": " + ", ".join(lmem)) if lmem else ""))
        tcs = [f for f in funcs if TC_RE.search(dm.get(f, f))]
        check(len(tcs) > 0, "%s: Tensor-Core W4A16 kernel present" % a)
        # every Tensor-Core kernel: HMMA and LDSM (the sm_75 build of the sm_80 template instance
        # only traps and is never launched there: skipped); at least one with this architecture's
        # full form: HMMA.1688 on sm_75, HMMA.16816 + LDGSTS (cp.async) on sm_80+
        full = ["HMMA.1688", "LDSM"] if a == "sm_75" else ["HMMA.16816", "LDSM", "LDGSTS"]
        have_full = []
        for f in tcs:
            body = "\n".join(funcs[f])
            if a == "sm_75" and "HMMA" not in body:
                continue
            n_tc += 1
            missing = [w for w in ("HMMA", "LDSM") if w not in body]
            check(not missing, "%s: %s has HMMA and LDSM%s" % (a, short(dm.get(f, f)),
                                                             (" (missing " + ", ".join(missing) + ")") if missing else ""))
            if all(w in body for w in full):
                have_full.append(f)
        check(len(have_full) > 0, "%s: a Tensor-Core kernel with %s" % (a, ", ".join(full)))
    check(n_tc >= len(ARCHS), "a Tensor-Core kernel checked on every architecture (%d)" % n_tc)
    print("\ncuda gates: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
