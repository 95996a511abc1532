"""x0 error per timestep of exported priors against the identity denoiser x_t/√ᾱ_t (docs/evaluation.md).

A prior that predicts x0 should beat "return the noisy input" wherever the noise is small; the first demo
prior did not (no path from x_t to its output), which is what the EDM preconditioning fixes.
"""
import json
import math

import numpy as np

from .common import log, setup
from .data import load_interactions, load_items
from .export import load_prior, model_fn
from .schedule import alphas_cumprod

Y_MAX = 10.0
T_GRID = [0, 1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]


def x0_error(model_dir, items, item_ids_path, interactions, pairs=2000, seed=0, ts=T_GRID):
    """RMS per coordinate of x0(x_t) − x0 over `pairs` (user, item, like) rows of `interactions` whose user
    is in the model, each t with the same items and noise; and of the identity x_t/√ᾱ_t."""
    setup(seed)
    man, _, model, table, ids = load_prior(model_dir)
    E, item_ids = load_items(items, item_ids_path)
    users, rows = load_interactions(interactions, item_ids)
    row_of = {u: i for i, u in enumerate(ids)}
    keep = np.array([users[u] in row_of for u in rows[:, 0]])
    rows = rows[keep][np.random.default_rng(seed).permutation(int(keep.sum()))[:pairs]]
    user_rows = np.array([row_of[users[u]] for u in rows[:, 0]])
    x0 = E[rows[:, 1]].astype(np.float64)
    noise = np.random.default_rng(seed + 1).standard_normal(x0.shape)
    ac = alphas_cumprod()
    fn = model_fn(model)
    out = {"model": man["version"], "parameterization": "edm" if "sigma_data" in man["training"]["model_config"] else "x0",
           "pairs": len(rows), "t": list(ts), "model_rms": [], "identity_rms": []}
    for t in ts:
        x_t = math.sqrt(ac[t]) * x0 + math.sqrt(1 - ac[t]) * noise
        pred = fn(x_t.astype(np.float32), np.full(len(rows), t, np.int64), table[user_rows], rows[:, 2].astype(np.int64))
        out["model_rms"].append(float(np.sqrt(np.mean((pred.astype(np.float64) - x0) ** 2))))
        out["identity_rms"].append(float(np.sqrt(np.mean((x_t / math.sqrt(ac[t]) - x0) ** 2))))
    log(json.dumps({k: out[k] for k in ("model", "parameterization")}) + " done")
    return out


def svg_chart(curves, width=640, height=360):
    """Log-log style line chart (x: log10(1+t), y: log10 RMS) of {label: (ts, values, colour, dashed)}.
    Values above Y_MAX are drawn at Y_MAX (the identity's error reaches 2e4 at t = 999)."""
    pad_l, pad_r, pad_t, pad_b = 60, 170, 20, 40
    xs = [math.log10(1 + t) for c in curves.values() for t in c[0]]
    ys = [math.log10(min(v, Y_MAX)) for c in curves.values() for v in c[1]]
    x_lo, x_hi = 0.0, max(xs)
    y_lo, y_hi = math.floor(min(ys)), math.ceil(max(ys))

    def px(t):
        return pad_l + (math.log10(1 + t) - x_lo) / (x_hi - x_lo) * (width - pad_l - pad_r)

    def py(v):
        return pad_t + (y_hi - math.log10(min(v, Y_MAX))) / (y_hi - y_lo) * (height - pad_t - pad_b)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for e in range(y_lo, y_hi + 1):
        y = py(10 ** e)
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    for t in (0, 1, 10, 100, 999):
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{height - pad_b}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="{height - pad_b + 14}" text-anchor="middle">{t}</text>')
    parts.append(f'<text x="{(pad_l + width - pad_r) / 2}" y="{height - 6}" text-anchor="middle">timestep t (log scale of 1+t)</text>'
                 f'<text x="14" y="{(pad_t + height - pad_b) / 2}" transform="rotate(-90 14 {(pad_t + height - pad_b) / 2})" '
                 f'text-anchor="middle">x0 RMS error per coordinate</text>')
    for k, (label, (ts, vals, colour, dashed)) in enumerate(curves.items()):
        pts = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in zip(ts, vals))
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        ly = pad_t + 14 + 18 * k
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
                     f'<line x1="{width - pad_r + 10}" x2="{width - pad_r + 34}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
                     f'<text x="{width - pad_r + 40}" y="{ly}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_report(results, out_json=None, out_svg=None):
    """results: [x0_error(...)] for several models; the identity baseline is drawn once (it is model-free)."""
    colours = ["#c0392b", "#2471a3", "#27ae60", "#8e44ad"]
    curves = {f"{r['model']} ({r['parameterization']})": (r["t"], r["model_rms"], colours[k % 4], False) for k, r in enumerate(results)}
    curves["identity x_t/√ᾱ_t"] = (results[0]["t"], results[0]["identity_rms"], "#555", True)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(results, f, indent=1)
    if out_svg:
        with open(out_svg, "w") as f:
            f.write(svg_chart(curves))
    print("| t | identity | " + " | ".join(f"{r['model']} ({r['parameterization']})" for r in results) + " |")
    print("|---|---|" + "---|" * len(results))
    for j, t in enumerate(results[0]["t"]):
        print(f"| {t} | {results[0]['identity_rms'][j]:.4f} | " + " | ".join(f"{r['model_rms'][j]:.4f}" for r in results) + " |")
