"""The report's sections: per paper item its claim, the measured numbers, a verdict and a figure.

Every verdict follows :mod:`analysis.paper.verdict`; each section states the
exact comparison it makes in ``rule``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Callable

import numpy as np

from analysis.paper import figures
from analysis.paper import verdict as V
from analysis.paper.plan import Plan
from train.common import rundir

NOT_MEASURED = "not measured"


def fmt(values) -> str:
    """``mean +- std (n)`` of per-seed values (std ddof 1)."""
    mean, std = V.mean_std(values)
    n = len([v for v in values if v is not None and math.isfinite(v)])
    return f"{mean:.4f} +- {std:.4f} (n={n})" if n > 1 else f"{mean:.4f} (n={n})"


def short(values) -> str:
    """``mean+-std`` (3 decimals) of per-seed values, the mean alone for one seed."""
    mean, std = V.mean_std(values)
    return f"{mean:.3f}+-{std:.3f}" if len(values) > 1 else f"{mean:.3f}"


def robust_summary(t: dict, name: str) -> str:
    """Accuracy NSNN / DSNN per non-zero strength."""
    return "acc NSNN / DSNN: " + ", ".join(f"{name} {x:g}: {short(t['nsnn_acc'][x])} / {short(t['dsnn_acc'][x])}"
                                           for x in t["strengths"] if x > 0)


def part(test: str, comparison: V.Comparison) -> dict:
    return {"test": test, "verdict": comparison.verdict, "difference": comparison.difference,
            "pooled_std": comparison.pooled_std, "seeds": comparison.seeds}


def same(a, b) -> V.Comparison:
    """'a and b agree': holds within 2 pooled std, does not hold beyond (1 seed: inconclusive)."""
    seeds = min(len(a), len(b))
    spread = V.pooled_std(a, b) if seeds > 1 else float("nan")
    difference = float(np.mean(a) - np.mean(b))
    if seeds < 2:
        return V.Comparison(V.ONE_SEED, difference, spread, seeds)
    ok = abs(difference) <= V.K * spread
    return V.Comparison(V.HOLDS if ok else V.FAILS, difference, spread, seeds)


class Reader:
    """Reads the results of a plan's runs and analyses from the output folder."""

    def __init__(self, plan: Plan):
        self.plan = plan

    def metrics(self, run: str) -> list[dict]:
        return rundir.read_metrics(self.plan.run_dir(run))

    def final(self, run: str) -> float:
        return float(self.metrics(run)[-1]["test_accuracy"])

    def curve(self, run: str) -> list[float]:
        return [float(r["test_accuracy"]) for r in self.metrics(run)]

    def json(self, relative: str) -> dict:
        with open(os.path.join(self.plan.out, relative)) as f:
            return json.load(f)

    def analysis(self, name: str) -> dict:
        step = next(s for s in self.plan.steps if s.name == name)
        return self.json(step.output)

    def robustness(self, name: str) -> dict:
        """``(run name, variant) -> {strength: (accuracy, loss)}`` of a robustness step."""
        table: dict = {}
        for row in self.analysis(name)["rows"]:
            run = os.path.basename(os.path.normpath(row["run"]))
            table.setdefault((run, row["variant"]), {})[row["strength"]] = (row["accuracy_mean"], row["loss_mean"])
        return table


def interior_optimum(levels: list[str], groups: dict[str, list[float]]) -> list[dict]:
    """'A moderate level beats both extremes': the best interior level against the lowest and the highest."""
    if len(levels) < 3:
        return [{"test": "needs >= 3 noise levels", "verdict": V.UNSURE}]
    interior = levels[1:-1]
    best = max(interior, key=lambda s: np.mean(groups[s]))
    return [part(f"sigma {best} > sigma {levels[0]}", V.compare(groups[best], groups[levels[0]])),
            part(f"sigma {best} > sigma {levels[-1]}", V.compare(groups[best], groups[levels[-1]]))]


def strength_table(reader: Reader, step: str, nsnn: list[str], dsnn: list[str], nsnn_variant: str) -> dict:
    """Per strength: per-seed accuracy and loss of the NSNN (``nsnn_variant``) and the DSNN runs."""
    table = reader.robustness(step)
    strengths = sorted(next(iter(table.values())))

    def values(runs, variant, index):
        return {s: [table[(r, variant)][s][index] for r in runs if (r, variant) in table] for s in strengths}

    dsnn_variant = "single" if (dsnn[0], "single") in table else "clean"
    return {"strengths": strengths,
            "nsnn_acc": values(nsnn, nsnn_variant, 0), "nsnn_loss": values(nsnn, nsnn_variant, 1),
            "dsnn_acc": values(dsnn, dsnn_variant, 0), "dsnn_loss": values(dsnn, dsnn_variant, 1)}


def robustness_verdict(t: dict, label: str) -> list[dict]:
    """NSNN above the DSNN in accuracy averaged over the non-zero strengths (per seed), and below in loss."""
    positive = [s for s in t["strengths"] if s > 0]
    if not positive:
        return [{"test": "no strength > 0", "verdict": V.UNSURE}]

    def average(key):
        return list(np.mean([t[key][s] for s in positive], axis=0))

    return [part(f"{label}: NSNN accuracy > DSNN (mean over strengths > 0)", V.compare(average("nsnn_acc"), average("dsnn_acc"))),
            part(f"{label}: NSNN loss < DSNN (mean over strengths > 0)", V.compare(average("nsnn_loss"), average("dsnn_loss"), "less"))]


def series(t: dict, metric: str, nsnn: str = "NSNN") -> dict:
    """The NSNN and DSNN curves of ``metric`` (``"acc"`` or ``"loss"``) of a strength table, per-seed values per strength."""
    return {nsnn: (t["strengths"], [t[f"nsnn_{metric}"][s] for s in t["strengths"]]),
            "DSNN": (t["strengths"], [t[f"dsnn_{metric}"][s] for s in t["strengths"]])}


def rows_of(t: dict, prefix: str = "") -> list[list[str]]:
    return [[f"{prefix}{s:g}", fmt(t["nsnn_acc"][s]), fmt(t["dsnn_acc"][s]), fmt(t["nsnn_loss"][s]), fmt(t["dsnn_loss"][s])]
            for s in t["strengths"]]


ROBUST_HEADER = ["strength", "NSNN accuracy", "DSNN accuracy", "NSNN loss", "DSNN loss"]


# ------------------------------------------------------------------------------------ sections


def fig2b(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    mlp = plan.roles["mlp"]
    levels = list(mlp["noisy"])
    auc = {s: [float(np.mean(reader.curve(r))) for r in mlp["noisy"][s]] for s in levels}
    nsnn = {s: [reader.final(r) for r in mlp["noisy"][s]] for s in levels}
    dsnn = {s: [reader.final(r) for r in mlp["lif"][s]] for s in levels}
    left_parts = interior_optimum(levels, auc)
    right_parts = [part(f"scale {s}: DSNN (surrogate scale {s}) = NSNN (sigma {s})", same(dsnn[s], nsnn[s]))
                   for s in levels]
    n_mean = [np.mean(nsnn[s]) for s in levels]
    d_mean = [np.mean(dsnn[s]) for s in levels]
    shape_r = float(np.corrcoef(n_mean, d_mean)[0, 1]) if len(levels) > 2 and np.std(n_mean) > 0 and np.std(d_mean) > 0 else float("nan")
    left_claim = ("moderate membrane-noise variance learns best; too small or too large a variance learns worse "
                  "(64-hidden-unit MLP NSNN)")
    right_claim = "the surrogate's scale in SGL plays the role of the noise's std in NDL: DSNN accuracy vs scale tracks NSNN accuracy vs sigma"
    left_verdict, right_verdict = V.combine(p["verdict"] for p in left_parts), V.combine(p["verdict"] for p in right_parts)
    path = os.path.join(folder, "fig2b.png")
    figures.curves_and_finals(
        path, left_claim + " | " + right_claim, f"left: {left_verdict}; right: {right_verdict}",
        {f"NSNN sigma {s}": [reader.curve(r) for r in mlp["noisy"][s]] for s in levels},
        {"NSNN (x = noise std sigma)": ([float(s) for s in levels], [nsnn[s] for s in levels]),
         "DSNN (x = scale of the matched surrogate)": ([float(s) for s in levels], [dsnn[s] for s in levels])},
        "sigma (NSNN) / surrogate scale (DSNN)", "left: learning curves, NSNN", "right: final accuracy",
        extra="Fashion-MNIST (the paper: MNIST); error bars: std over seeds")
    left = {"key": "fig2b_left", "title": "Fig. 2B left: learning efficiency vs noise variance", "claim": left_claim,
            "rule": "mean test accuracy over the epochs (area under the learning curve) per seed; the best interior "
                    "sigma against the smallest and the largest sigma, each by the verdict rule; holds when both hold",
            "header": ["sigma", "mean accuracy over epochs", "final accuracy"],
            "rows": [[s, fmt(auc[s]), fmt(nsnn[s])] for s in levels],
            "summary": "mean acc over epochs by sigma: " + ", ".join(f"{x}: {short(auc[x])}" for x in levels),
            "measured": {"sigmas": levels, "auc": auc, "final": nsnn}, "parts": left_parts, "verdict": left_verdict,
            "figure": path}
    right = {"key": "fig2b_right", "title": "Fig. 2B right: SGL scale <-> NDL noise std", "claim": right_claim,
             "rule": "per scale, the DSNN trained with the surrogate matched to Gaussian noise of that std against the NSNN "
                     "at that sigma: holds when every pair agrees within 2 pooled std, does not hold when one differs "
                     "by more; with 1 seed inconclusive",
             "header": ["scale / sigma", "NSNN final accuracy", "DSNN final accuracy"],
             "rows": [[s, fmt(nsnn[s]), fmt(dsnn[s])] for s in levels],
             "summary": "final acc NSNN / DSNN by scale: " + ", ".join(f"{x}: {short(nsnn[x])} / {short(dsnn[x])}" for x in levels),
             "measured": {"nsnn_final": nsnn, "dsnn_final": dsnn, "shape_correlation": shape_r},
             "parts": right_parts, "verdict": right_verdict, "figure": path}
    return [left, right]


def fig3(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    role = plan.roles["classifier"]
    panels, parts, rows = [], [], []
    claim = "NSNNs keep higher accuracy than DSNNs under FGSM and DO attacks (Fig. 3, CIFAR)"
    eot = f"eot{plan.settings.eot_samples}"
    for attack, step, unit in (("FGSM", "fig3-fgsm", "gamma (L-inf, input units)"),
                               ("DO", "fig3-do", "gamma (L2 norm, input units)")):
        table = reader.robustness(step)
        variant = eot if (role["noisy"][0], eot) in table else "single"
        t = strength_table(reader, step, role["noisy"], role["lif"], variant)
        single = strength_table(reader, step, role["noisy"], role["lif"], "single")
        parts += robustness_verdict(t, f"{attack} ({variant} gradient on the NSNN)")
        rows += [[f"{attack} {s:g}", fmt(single["nsnn_acc"][s]), fmt(t["nsnn_acc"][s]), fmt(t["dsnn_acc"][s])]
                 for s in t["strengths"]]
        panels.append((f"{attack}", unit, "test accuracy (fraction)",
                       {"NSNN, single-sample gradient": series(single, "acc")["NSNN"],
                        **series(t, "acc", f"NSNN, {variant} gradient")}))
    verdict = V.combine(p["verdict"] for p in parts)
    path = figures.strength_panels(os.path.join(folder, "fig3.png"), claim, verdict, panels,
                                   extra=f"classifier: {role['kind']} on Fashion-MNIST; error bars: std over seeds")
    return [{"key": "fig3", "title": "Fig. 3: adversarial attacks (FGSM, DO)", "claim": claim,
             "rule": "per attack, per seed the accuracy (and loss) averaged over gamma > 0; NSNN attacked with the "
                     "averaged (EOT) gradient against the DSNN, by the verdict rule; holds when all parts hold",
             "header": ["attack gamma", "NSNN acc (single grad)", "NSNN acc (EOT grad)", "DSNN acc"], "rows": rows,
             "summary": "acc NSNN (EOT) / DSNN: " + ", ".join(f"{r[0]}: {r[2].split(' (')[0]} / {r[3].split(' (')[0]}" for r in rows if not r[0].endswith(" 0")),
             "measured": {}, "parts": parts, "verdict": verdict, "figure": path}]


def fig4(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    family = plan.roles["classifier_sigmas"]
    levels = sorted(family, key=float)
    final = {s: [reader.final(r) for r in family[s]] for s in levels}
    parts = interior_optimum(levels, final)
    best = max(levels, key=lambda s: np.mean(final[s]))
    within = [s for s in levels if s == best or V.within_noise(final[s], final[best])]
    moderate = [s for s in levels if 0.2 <= float(s) <= 0.5]
    if len(moderate) >= 2:
        top = max(moderate, key=lambda s: np.mean(final[s]))
        parts += [part(f"sigma {s} = sigma {top} (within [0.2, 0.5])", same(final[s], final[top])) for s in moderate if s != top]
    claim = "accuracy first rises then falls with sigma; within [0.2, 0.5] sigma has no significant effect"
    verdict = V.combine(p["verdict"] for p in parts)
    band = (float(min(within, key=float)), float(max(within, key=float)))
    path = figures.curves_and_finals(
        os.path.join(folder, "fig4.png"), claim, verdict,
        {f"sigma {s}": [reader.curve(r) for r in family[s]] for s in levels},
        {"NSNN": ([float(s) for s in levels], [final[s] for s in levels])},
        "noise std sigma", "A: learning curves", "B: final accuracy vs sigma",
        extra=f"classifier: {plan.roles['classifier']['kind']} on Fashion-MNIST; shaded: sigmas within 2 pooled std "
              f"of the best ({', '.join(within)})", band=band)
    return [{"key": "fig4", "title": "Fig. 4: noise level and performance", "claim": claim,
             "rule": "final accuracy per seed: the best interior sigma against the extremes (verdict rule), and every "
                     "sigma in [0.2, 0.5] within 2 pooled std of the best of them; holds when all parts hold",
             "header": ["sigma", "final accuracy", "within noise of the best"],
             "rows": [[s, fmt(final[s]), "yes" if s in within else "no"] for s in levels],
             "summary": "final acc by sigma: " + ", ".join(f"{x}: {short(final[x])}" for x in levels)
                        + f"; within noise of the best: {', '.join(within)}",
             "measured": {"final": final, "within_noise_of_best": within, "best": best},
             "parts": parts, "verdict": verdict, "figure": path}]


def fig5a(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    results = [reader.analysis(name) for name in plan.roles["fano_classifier"]]
    differing = [r["example"]["differing_spike_fraction"] for r in results]
    pair_similarity = []
    for r in results:
        p = np.asarray(r["example"]["predictions"])
        pair_similarity.append(float(p[0] @ p[1] / max(np.linalg.norm(p[0]) * np.linalg.norm(p[1]), 1e-30)))
    stability = [r["mean_stability"] for r in results]
    mean_d, std_d = V.mean_std(differing)
    mean_s, std_s = V.mean_std(stability)
    n = len(results)
    parts = [{"test": "two trials' spike trains differ (fraction of (step, neuron) entries that differ > 0)",
              "verdict": V.judge(mean_d, std_d, n), "difference": mean_d, "pooled_std": std_d, "seeds": n},
             {"test": "predictions stay similar across trials (mean cosine similarity > 0.9)",
              "verdict": V.judge(mean_s - 0.9, std_s, n), "difference": mean_s - 0.9, "pooled_std": std_s, "seeds": n}]
    claim = "repeated trials of the same input give different spike trains but similar predictive distributions"
    verdict = V.combine(p["verdict"] for p in parts)
    path = figures.two_trials(os.path.join(folder, "fig5a.png"), claim, verdict, results[0]["example"], results[0]["layer"],
                              f"NSNN classifier ({plan.roles['classifier']['kind']}), test sample 0, seed 0; up to 32 "
                              f"neurons of {results[0]['layer']}, those that differ between the trials first; differing spike entries "
                              f"{differing[0]:.3f}, cosine similarity of the two predictions {pair_similarity[0]:.3f}")
    return [{"key": "fig5a", "title": "Fig. 5A: variability and prediction stability", "claim": claim,
             "rule": "the per-seed fraction of differing spike entries between two trials of sample 0 must exceed 0, and "
                     "the mean prediction similarity over trials 0.9, each by more than 2 std over seeds",
             "header": ["figure", "value"],
             "rows": [["differing spike entries (sample 0, trials 1 vs 2)", fmt(differing)],
                      ["cosine similarity of the two trials' predictions", fmt(pair_similarity)],
                      ["mean prediction similarity over all trials and samples", fmt(stability)]],
             "summary": f"differing spike entries {short(differing)}, prediction similarity {short(stability)}",
             "measured": {"differing_spike_fraction": differing, "pair_similarity": pair_similarity,
                          "mean_stability": stability}, "parts": parts, "verdict": verdict, "figure": path}]


def fig5bc(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    clf = [reader.analysis(n) for n in plan.roles["fano_classifier"]]
    sine = [reader.analysis(n) for n in plan.roles["fano_sine"]]
    r_clf, p_clf = [r["pearson_r"] for r in clf], [r["pearson_p"] for r in clf]
    r_sine, p_sine = [r["pearson_r"] for r in sine], [r["pearson_p"] for r in sine]
    b = V.below(r_clf, 0.0)
    parts = [part("classifier: r < 0", b)]
    significant = all(np.isfinite(p) and p < 0.05 for p in p_clf)
    parts.append({"test": "classifier: p < 0.05 in every seed",
                  "verdict": (V.HOLDS if significant else V.UNSURE) if len(p_clf) > 1 else V.ONE_SEED})
    try:
        parts.append(part("forecaster less rate-coded: r(forecaster) > r(classifier)", V.compare(r_sine, r_clf)))
    except ValueError as error:
        parts.append({"test": f"forecaster r > classifier r ({error})", "verdict": V.UNSURE})
    claim = ("B: average Fano factor and prediction similarity correlate negatively (r < 0, p < 0.05) in a classifier; "
             "C: the forecaster depends less on a rate code (weaker correlation)")
    verdict = V.combine(p["verdict"] for p in parts)
    path = figures.fano_scatter(os.path.join(folder, "fig5bc.png"), claim, verdict, [
        (f"B: classifier ({plan.roles['classifier']['kind']}), {clf[0]['active_samples']} samples",
         clf[0]["fano_factor_per_sample"], clf[0]["stability_per_sample"], r_clf[0], p_clf[0]),
        (f"C: sine forecaster, {sine[0]['active_samples']} windows",
         sine[0]["fano_factor_per_sample"], sine[0]["stability_per_sample"], r_sine[0], p_sine[0])])
    return [{"key": "fig5bc", "title": "Fig. 5B/C: Fano factor vs prediction similarity", "claim": claim,
             "rule": "B: mean r over seeds below 0 by more than 2 std, and p < 0.05 in every seed; C: r of the forecaster "
                     "above r of the classifier by the verdict rule",
             "header": ["model", "Pearson r", "p (per seed)", "mean Fano factor", "mean similarity"],
             "rows": [["classifier", fmt(r_clf), ", ".join(f"{p:.2g}" for p in p_clf),
                       fmt([r["mean_fano_factor"] for r in clf]), fmt([r["mean_stability"] for r in clf])],
                      ["sine forecaster", fmt(r_sine), ", ".join(f"{p:.2g}" for p in p_sine),
                       fmt([r["mean_fano_factor"] for r in sine]), fmt([r["mean_stability"] for r in sine])]],
             "summary": f"r classifier {short(r_clf)} (p {', '.join(f'{p:.2g}' for p in p_clf)}); "
                        f"r forecaster {short(r_sine)} (p {', '.join(f'{p:.2g}' for p in p_sine)})",
             "measured": {"r_classifier": r_clf, "p_classifier": p_clf, "r_forecaster": r_sine, "p_forecaster": p_sine},
             "parts": parts, "verdict": verdict, "figure": path}]


# how analysis.jpsth chose the neurons it shows (runs made before --select existed have no "select")
JPSTH_SELECTION = {"variable": "most variable across trials", "active": "most active"}


def fig5d(reader: Reader, folder: str) -> list[dict]:
    from analysis import plots

    plan = reader.plan
    sine = [reader.analysis(n) for n in plan.roles["jpsth_sine"]]
    clf = [reader.analysis(n) for n in plan.roles["jpsth_classifier"]]
    c_sine = [r["mean_abs_correlation_between_neurons"] for r in sine]
    c_clf = [r["mean_abs_correlation_between_neurons"] for r in clf]
    chance = sine[0]["chance_abs_correlation"]
    parts = [part("mean |r| between distinct neurons: forecaster > classifier", V.compare(c_sine, c_clf))]
    claim = "forecaster neurons co-activate (pairwise firing correlations), not seen in a classifier"
    verdict = V.combine(p["verdict"] for p in parts)
    kind = plan.roles["classifier"]["kind"]
    paths = []
    for name, results, label in (("fig8.png", sine, "Fig. 8: sine forecaster, 16-unit last layer"),
                                 ("fig7.png", clf, f"Fig. 7: classifier ({kind}), the {len(clf[0]['neurons'])} neurons "
                                 f"{JPSTH_SELECTION[clf[0].get('select', 'active')]}")):
        r = results[0]
        paths.append(os.path.join(folder, name))
        plots.jpsth_grid(np.asarray(r["jpsth"]), r["neurons"],
                         f"{label}; {r['layer']}, sample {r['sample']}, {r['trials']} trials, seed 0\n"
                         f"Paper: {claim}\nMeasured verdict: {verdict}; mean |r| between distinct neurons "
                         f"{r['mean_abs_correlation_between_neurons']:.3f} (chance {r['chance_abs_correlation']:.3f})",
                         paths[-1])
    part_path = figures.jpsth_part(os.path.join(folder, "fig5d.png"), claim, verdict,
                                   [("sine forecaster (4 of 16 neurons)", sine[0]["jpsth"], sine[0]["neurons"]),
                                    (f"classifier ({kind}, 4 of 16 neurons)", clf[0]["jpsth"], clf[0]["neurons"])])
    return [{"key": "fig5d_7_8", "title": "Fig. 5D / 7 / 8: normalised JPSTH", "claim": claim,
             "rule": "mean |Pearson r| over distinct neuron pairs and step pairs (self pairs excluded), forecaster "
                     "against classifier, by the verdict rule; chance level sqrt(2 / (pi N)) for N trials",
             "header": ["model", "mean abs(r) between distinct neurons", "chance abs(r)"],
             "rows": [["sine forecaster", fmt(c_sine), f"{chance:.4f}"],
                      [f"classifier ({kind})", fmt(c_clf), f"{clf[0]['chance_abs_correlation']:.4f}"]],
             "summary": f"mean abs(r) forecaster {short(c_sine)}, classifier {short(c_clf)} (chance {chance:.3f})",
             "measured": {"forecaster": c_sine, "classifier": c_clf, "chance": chance},
             "parts": parts, "verdict": verdict, "figure": part_path, "figures": [part_path] + paths}]


def table2(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    claim = "under EventDrop (rho 0.05-0.65) NSNNs have lower loss and higher accuracy than DSNNs (DVS-CIFAR)"
    base = {"key": "table2", "title": "Table 2: EventDrop on event data", "claim": claim,
            "rule": "per seed the accuracy (and loss) averaged over rho; NSNN against DSNN by the verdict rule"}
    if plan.roles["dvs"] is None:
        return [{**base, "status": NOT_MEASURED + ": this checkout cannot make event data from Fashion-MNIST "
                                                  "(train.dvs_cifar --dataset fashion_mnist_dvs)", "verdict": NOT_MEASURED}]
    dvs = plan.roles["dvs"]
    t = strength_table(reader, "table2-eventdrop", dvs["noisy"], dvs["lif"], "clean")
    parts = robustness_verdict(t, "EventDrop")
    verdict = V.combine(p["verdict"] for p in parts)
    path = figures.strength_panels(os.path.join(folder, "table2.png"), claim, verdict, [
        ("EventDrop: accuracy", "rho (fraction of events dropped)", "test accuracy (fraction)",
         series(t, "acc")),
        ("EventDrop: loss", "rho (fraction of events dropped)", "test loss (CE of the mean logits)",
         series(t, "loss"))],
        extra="event data emulated from Fashion-MNIST; error bars: std over seeds")
    return [{**base, "header": ROBUST_HEADER, "rows": rows_of(t, "rho "), "measured": t, "parts": parts,
             "summary": robust_summary(t, "rho"),
             "verdict": verdict, "figure": path}]


def table7(reader: Reader, folder: str) -> list[dict]:
    plan = reader.plan
    claim = "under spike flips (beta 0.01-0.04) NSNNs have lower loss and higher accuracy than DSNNs (Table 7, Fig. 6)"
    role = plan.roles["classifier"]
    sets = [("Fig. 6: classifier", strength_table(reader, "fig6-flip", role["noisy"], role["lif"], "clean"))]
    if plan.roles["dvs"] is not None:
        dvs = plan.roles["dvs"]
        sets.append(("Table 7: event data", strength_table(reader, "table7-flip", dvs["noisy"], dvs["lif"], "clean")))
    parts, rows, panels = [], [], []
    for label, t in sets:
        parts += robustness_verdict(t, label)
        rows += rows_of(t, f"{label.split(':')[0]} beta ")
        panels.append((f"{label}: accuracy", "beta (fraction of spikes flipped)", "test accuracy (fraction)",
                       series(t, "acc")))
        panels.append((f"{label}: loss", "beta (fraction of spikes flipped)", "test loss (CE of the mean logits)",
                       series(t, "loss")))
    verdict = V.combine(p["verdict"] for p in parts)
    path = figures.strength_panels(os.path.join(folder, "table7_fig6.png"), claim, verdict, panels,
                                   extra=f"classifier: {role['kind']} on Fashion-MNIST; error bars: std over seeds")
    return [{"key": "table7_fig6", "title": "Table 7 / Fig. 6: spike flips", "claim": claim,
             "rule": "per seed the accuracy (and loss) averaged over beta > 0; NSNN against DSNN by the verdict rule; "
                     "holds when all parts hold",
             "header": ROBUST_HEADER, "rows": rows, "measured": {label: t for label, t in sets}, "parts": parts,
             "summary": "; ".join(f"{label.split(':')[0]}: {robust_summary(t, 'beta')}" for label, t in sets),
             "verdict": verdict, "figure": path}]


SECTIONS: list[tuple[list[str], Callable]] = [
    (["fig2b_left", "fig2b_right"], fig2b), (["fig3"], fig3), (["fig4"], fig4), (["fig5a"], fig5a),
    (["fig5bc"], fig5bc), (["fig5d_7_8"], fig5d), (["table2"], table2), (["table7_fig6"], table7),
]
KEYS = [key for keys, _ in SECTIONS for key in keys]


def build_all(plan: Plan, folder: str) -> list[dict]:
    """Every section, in the paper's order; one whose inputs are missing says what is missing."""
    reader = Reader(plan)
    out = []
    for keys, build in SECTIONS:
        try:
            sections = build(reader, folder)
            for s in sections:
                s.setdefault("status", "measured")
            out += sections
        except (OSError, KeyError, ValueError, IndexError, StopIteration) as error:
            out += [{"key": key, "title": key, "status": f"{NOT_MEASURED}: {type(error).__name__}: {error}",
                     "verdict": NOT_MEASURED} for key in keys]
    return out
