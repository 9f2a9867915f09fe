"""From the children's results to what bench.py prints: FLOPs per evaluation, the ratios per size, the issue-5
targets (reported, never asserted) and Markdown tables that paste into a README."""

from __future__ import annotations

import math

from nst.engine.manifest import Manifest

TARGETS = {
    "engine_vs_torch": 0.80,  # engine s/eval ÷ torch s/eval at 256² and 512², at most
    "peak_share": 0.60,  # engine GFLOP/s ÷ the measured GEMM peak at 512², at least
    "engine_vs_pastiche": 0.80,  # engine s/iteration ÷ pastiche s/step, at most
}
MB = 1 << 20


def flops_per_eval(manifest: Manifest, h: int, w: int) -> dict:
    """FLOPs of one loss+gradient evaluation from the architecture: forward 3x3 convs 2*Cin*Cout*9*H_l*W_l, their
    input gradients the same again (conv1_1's included: the image needs it), Grams C^2*N (syrk), style gradients
    2*C^2*N. ReLU, pooling, elementwise work and the content loss are not counted."""
    fwd, c_in = 0, 3
    for layer in manifest.layers:
        if layer.kind == "conv":
            fwd += 2 * c_in * layer.channels * 9 * (h // layer.scale) * (w // layer.scale)
            c_in = layer.channels
    gram = 0
    for tap in manifest.default_style_layers:
        spec = manifest.layer(tap)
        gram += spec.channels**2 * (h // spec.scale) * (w // spec.scale)
    return {
        "forward_conv": fwd,
        "input_grad_conv": fwd,
        "gram": gram,
        "style_grad": 2 * gram,
        "total": 2 * fwd + 3 * gram,
    }


def derive(r: dict, peak_gflops: float | None) -> None:
    """Add the rates and ratios of one size's results `r` (engine, torch, pastiche, flops) to it."""
    e, t, pa = r["engine"], r.get("torch", {}), r.get("pastiche", {})
    e_total = (e.get("split_s") or {}).get("total")
    if e_total:
        r["engine_gflops"] = r["flops"]["total"] / e_total / 1e9
        r["engine_peak_share"] = r["engine_gflops"] / peak_gflops if peak_gflops else None
    if t.get("total_s"):
        r["torch_gflops"] = r["flops"]["total"] / t["total_s"] / 1e9
        r["torch_peak_share"] = r["torch_gflops"] / peak_gflops if peak_gflops else None
        if e_total:
            r["engine_vs_torch"] = e_total / t["total_s"]
    if e.get("peak_rss_bytes") and t.get("peak_rss_bytes"):
        r["engine_vs_torch_memory"] = e["peak_rss_bytes"] / t["peak_rss_bytes"]
    s_per_it = (e.get("stylize") or {}).get("s_per_iteration_median")
    if s_per_it and pa.get("s_per_step_median"):
        r["engine_vs_pastiche"] = s_per_it / pa["s_per_step_median"]
        r["engine_vs_pastiche_per_evaluation"] = e["stylize"]["s_per_evaluation"] / pa["s_per_step_median"]


def evaluate_targets(res: dict) -> list[dict]:
    def at(size, key):
        return res["per_size"].get(str(size), {}).get(key)

    def target(name: str, passed, detail: str) -> dict:
        return {"name": name, "pass": passed, "detail": detail or "not measured"}

    out = []
    for s in (256, 512):
        r = at(s, "engine_vs_torch")
        out.append(
            target(
                f"engine ÷ torch ≤ {TARGETS['engine_vs_torch']:.2f} at {s}²",
                None if r is None else r <= TARGETS["engine_vs_torch"],
                "" if r is None else f"{r:.2f}",
            )
        )
    share = at(512, "engine_peak_share")
    out.append(
        target(
            f"≥ {100 * TARGETS['peak_share']:.0f}% of measured peak FLOP rate at 512²",
            None if share is None else share >= TARGETS["peak_share"],
            ""
            if share is None
            else f"{100 * share:.0f}% ({at(512, 'engine_gflops'):.0f} of {res['peak']['peak_gflops']:.0f} GFLOP/s)",
        )
    )
    mems = [(s, at(s, "engine_vs_torch_memory")) for s in res["sizes"] if at(s, "engine_vs_torch_memory") is not None]
    out.append(
        target(
            "engine peak memory ≤ torch's (every size)",
            all(r <= 1.0 for _, r in mems) if mems else None,
            ", ".join(f"{s}²: {r:.2f}" for s, r in mems),
        )
    )
    ps = [(s, at(s, "engine_vs_pastiche")) for s in res["sizes"] if at(s, "engine_vs_pastiche") is not None]
    out.append(
        target(
            f"engine ÷ pastiche s/step ≤ {TARGETS['engine_vs_pastiche']:.2f} (every size)",
            all(r <= TARGETS["engine_vs_pastiche"] for _, r in ps) if ps else None,
            ", ".join(f"{s}²: {r:.2f}" for s, r in ps),
        )
    )
    return out


def fmt(v, spec=".3f", none="n/a") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return none
    return format(v, spec)


def ms(v):
    return None if v is None else 1e3 * v


def mb(v):
    return None if v is None else v / MB


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|", *map(line, rows)])


def speed_table(res: dict) -> str:
    rows = []
    for s in res["sizes"]:
        r = res["per_size"][str(s)]
        e, t = r.get("engine", {}), r.get("torch", {})
        sp, st = e.get("split_s", {}), e.get("stylize") or {}
        share = r.get("engine_peak_share")
        rows.append(
            [
                f"{s}²",
                fmt(ms(sp.get("features")), ".0f"),
                fmt(ms(sp.get("losses")), ".0f"),
                fmt(ms(sp.get("vjp")), ".0f"),
                fmt(ms(st.get("lbfgs_s_per_iteration")), ".0f"),
                fmt(st.get("lbfgs_setup_seconds"), ".1f"),
                fmt(sp.get("total")),
                fmt(t.get("total_s")),
                fmt(r.get("engine_vs_torch"), ".2f"),
                fmt(r["flops"]["total"] / 1e9, ".1f"),
                fmt(r.get("engine_gflops"), ".0f"),
                fmt(None if share is None else 100 * share, ".0f"),
                fmt(r.get("torch_gflops"), ".0f"),
            ]
        )
    return table(
        [
            "size",
            "ORT fwd ms",
            "NumPy loss ms",
            "ORT grad ms",
            "L-BFGS ms/it",
            "L-BFGS setup s",
            "engine s",
            "torch s",
            "engine÷torch",
            "GFLOP",
            "engine GFLOP/s",
            "% peak",
            "torch GFLOP/s",
        ],
        rows,
    )


def memory_table(res: dict) -> str:
    rows = []
    for s in res["sizes"]:
        r = res["per_size"][str(s)]
        e, t, p = r.get("engine", {}), r.get("torch", {}), r.get("pastiche", {})
        st = e.get("stylize") or {}
        rows.append(
            [
                f"{s}²",
                fmt(mb(e.get("peak_rss_bytes")), ".0f"),
                fmt(mb(t.get("peak_rss_bytes")), ".0f"),
                fmt(mb(p.get("peak_rss_bytes")), ".0f"),
                fmt(r.get("engine_vs_torch_memory"), ".2f"),
                str(st.get("iterations", "n/a")),
                str(st.get("evaluations", "n/a")),
                fmt(st.get("s_per_iteration_median")),
                fmt(p.get("s_per_step_median")),
                fmt(r.get("engine_vs_pastiche"), ".2f"),
            ]
        )
    return table(
        [
            "size",
            "engine MB",
            "torch MB",
            "pastiche MB",
            "engine÷torch mem",
            "engine its",
            "engine evals",
            "engine s/it",
            "pastiche s/step",
            "engine÷pastiche",
        ],
        rows,
    )


def scaling_lines(res: dict) -> list[str]:
    m = res.get("memory") or {}
    if not m.get("points"):
        return []
    rows = [
        [
            f"{p['size']}²",
            f"{p['pixels'] / 1e6:.3f}",
            fmt(p["s_per_eval"]),
            *(fmt(mb(p[k]), ".0f") for k in ("peak_rss_eval_bytes", "projected_full_run_bytes", "estimate_bytes")),
            fmt(p["estimate_over_projected"], ".2f"),
        ]
        for p in m["points"]
    ]
    f, pr, cur = m["fit"], m["proposed"], m["current"]
    out = [
        "",
        "Engine scaling (evaluation loop; estimate = nst.engine.memory.estimate_bytes for a full run, "
        "projected = measured + steady-state L-BFGS arrays):",
        "",
        table(["size", "Mpixel", "s/eval", "peak MB", "projected run MB", "estimate MB", "estimate÷projected"], rows),
        "",
        f"Fit: peak = {f['intercept_bytes'] / MB:.0f} MB + {f['bytes_per_pixel']:.0f} B/pixel "
        f"({m['activations_per_pixel']:.1f} activations/pixel). Proposed constants: ACTIVATION_FACTOR = "
        f"{pr['ACTIVATION_FACTOR']} (now {cur['ACTIVATION_FACTOR']}), BASE_BYTES = {pr['BASE_BYTES'] / 1e6:.0f}e6 "
        f"(now {cur['BASE_BYTES'] / 1e6:.0f}e6).",
    ]
    ls = m.get("largest_square")
    if ls:
        swap = "swap present" if ls["swap"] else "no swap"
        seconds = fmt(ls.get("s_per_eval_extrapolated"), ".0f")
        out.append(
            f"Largest square fitting in RAM (90% of {ls['available_bytes'] / 2**30:.1f} GiB available, {swap}): "
            f"{ls['side']}² (~{seconds} s/eval extrapolated); the current estimate says "
            f"{ls['estimate_says_side']}²."
        )
    c = res.get("confirm")
    if c:
        if "error" in c:
            found = c["error"][:200]
        else:
            predicted = fmt(mb(c.get("fit_predicted_bytes")), ".0f")
            found = (
                f"peak {mb(c['peak_rss_bytes']):.0f} MB (fit predicts {predicted} MB), "
                f"{c['split_s']['total']:.1f} s/eval"
            )
        out.append(f"Confirmation run at {c.get('size')}² (2 evaluations): {found}")
    return out


def report(res: dict) -> str:
    m, v, peak = res["machine"], res["versions"], res["peak"]
    out = [
        f"nst benchmark {res['date']}  git {v.get('git_commit')}  {m.get('cpu_model')}, {m['cores']} cores, "
        f"{m.get('MemTotal', 0) / 2**30:.1f} GiB RAM",
        f"onnxruntime {v['onnxruntime']}  torch {v['torch']}  numpy {v['numpy']}  scipy {v['scipy']}  pastiche "
        f"{v['pastiche']}; measured float32 GEMM peak {fmt(peak.get('peak_gflops'), '.0f')} GFLOP/s "
        f"({peak.get('peak_source')})",
        "",
        "Per loss+gradient evaluation (median; engine = ORT forward + NumPy losses + ORT gradient graph). L-BFGS "
        "ms/it and setup s: the engine's own record of its short stylize() run (scipy L-BFGS-B + the float64 <-> "
        "float32 boundary per iteration, few correction pairs stored; minimize()'s one-time setup):",
        "",
        speed_table(res),
        "",
        "Peak memory (ru_maxrss of separate processes) and pastiche CLI, same size and step count (engine "
        "iteration = 1+ evaluations; pastiche step = exactly 1):",
        "",
        memory_table(res),
        *scaling_lines(res),
    ]
    foreign = []
    for s in res["sizes"]:
        for k in ("engine", "torch", "pastiche"):
            share = res["per_size"][str(s)].get(k, {}).get("foreign_cpu_share")
            if share is not None:
                foreign.append((share, f"{k} {s}²"))
    if foreign:
        share, where = max(foreign)
        out += [
            "",
            f"Other processes' share of the CPU while measuring: up to {share:.0%} ({where})"
            + (" -- timings contended, compare ratios only" if share > 0.1 else " (quiet)"),
        ]
    out += ["", "Targets:"]
    for t in res["targets"]:
        mark = "PASS" if t["pass"] else "FAIL" if t["pass"] is not None else "N/A "
        out.append(f"  [{mark}] {t['name']}: {t['detail']}")
    return "\n".join(out)
