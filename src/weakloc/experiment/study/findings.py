"""The study's results by role (:class:`Study`), and the paper's findings checked on them one by one.

Each check computes the same quantity on our numbers and on the paper's (paper.py), states the rule it applies,
and says whether it holds here; a check whose runs are missing says so (``holds = None``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...evaluate.report import fmt
from . import paper

if TYPE_CHECKING:
    from ..spec import Experiment

WEAK, STRONG_AP = ("A", "B"), 90.0  # "strong detection": AP of at least this (the paper's are 94.4-95.3)
METHOD_ORDER = ("gradcam", "patches", "attention")
# DOLOS generator names -> the paper's Figure 6 names
DOLOS_COUNTERPART = {"repaint-p2": "repaint", "repaint-p2-9k": "repaint", "ldm": "ldm", "lama": "lama",
                     "pluralistic": "pluralistic"}


class Study:
    """The runs of a study experiment by role: Table 2 (``part = "table2"``), Table 3 (other source) and the
    Figure 6 columns (setup-C runs with ``cross`` test sets)."""

    def __init__(self, exp: "Experiment | None", results: dict) -> None:
        self.exp, self.results = exp, results

    def _find(self, part: str, method: str, setup: str) -> dict | None:
        for res in self.results.values():
            if res.get("part", "") in (part, "" if part == "table2" else part) and res.get("method") == method \
                    and res.get("setup") == setup and "localization" in res:
                return res
        return None

    def table2(self, method: str, setup: str) -> dict | None:
        return self._find("table2", method, setup)

    def table3(self, setup: str) -> dict | None:
        return self._find("table3", "patches", setup)

    def has_table3(self) -> bool:
        return any(self.table3(s) for s in "ABC")

    def any_result(self) -> dict | None:
        return next((r for r in self.results.values() if r.get("baselines") and r.get("part") == "table2"),
                    next((r for r in self.results.values() if r.get("baselines")), None))

    def sources(self) -> dict[str, str]:
        same = next((r.get("trained_on", {}).get("dataset") for s in "ABC" if (r := self.table2("patches", s))), "")
        other = next((r.get("trained_on", {}).get("dataset") for s in "ABC" if (r := self.table3(s))), "")
        return {"same": same or "same", "other": other or "other"}

    def figure6(self) -> dict | None:
        """{"columns", "rows", "values" [row][column], "singles": the number of single-generator columns}."""
        runs = [r for r in self.results.values() if r.get("cross") and r.get("setup") == "C"]
        if not runs:
            return None
        tested = list(dict.fromkeys(g for r in runs for g in r["cross"]))
        columns: dict[str, dict] = {}
        for res in runs:
            trained = list(res.get("trained_on", {}).get("local") or [])
            if len(trained) == 1:
                label = trained[0]
            elif len(trained) == len(tested) - 1 and set(trained) < set(tested):
                label = "w/o " + next(g for g in tested if g not in trained)
            else:
                label = "+".join(trained)
            columns.setdefault(label, res)
        singles = [g for g in tested if g in columns]
        combos = [f"w/o {g}" for g in tested if f"w/o {g}" in columns]
        order = singles + combos + [c for c in columns if c not in singles and c not in combos]
        values = [[(columns[c]["cross"].get(row) or {}).get("localization", {}).get("iou_lg") for c in order]
                  for row in tested]
        return {"columns": order, "rows": tested, "values": values, "singles": len(singles)}

    def paper_name(self, label: str) -> str:
        if label.startswith("w/o "):
            return "w/o " + self.paper_name(label[4:])
        return paper.BUILTIN_COUNTERPART.get(label) or DOLOS_COUNTERPART.get(label, label)

    def counterparts(self) -> dict[str, str]:
        matrix = self.figure6()
        return {g: self.paper_name(g) for g in (matrix["rows"] if matrix else [])}


def _iou(res: dict | None) -> float | None:
    return None if not res else res["localization"].get("iou_lg")


def _value(res: dict | None, key: str) -> float | None:
    if not res:
        return None
    if key == "ap":
        return (res.get("detection") or {}).get("ap")
    return res["localization"].get(key)


def headline(study: Study) -> dict:
    """Weak supervision localizes: in setups A and B, Patches' IoU interval lies above both trivial maps'."""
    lines, verdicts = [], []
    for method in METHOD_ORDER:
        for setup in WEAK:
            res = study.table2(method, setup)
            if not res:
                continue
            intervals = res.get("intervals") or {}
            ours = (intervals.get("localization") or {}).get("iou_lg")
            fake = (intervals.get("baselines") or {}).get("all-fake", {}).get("iou_lg")
            above = ours is not None and fake is not None and ours[0] > max(fake[1], 0.0)
            if method == "patches":
                verdicts.append(above)
            lines.append(f"{method} {setup}: IoU {fmt(_iou(res))} (95% interval {fmt(ours and ours[0])}–"
                         f"{fmt(ours and ours[1])}) vs all-fake map {fmt(fake and fake[0])}–{fmt(fake and fake[1])}, "
                         f"all-real map 0.0: {'above both' if above else 'not above both'}")
    paper_line = ("Patches IoU 64.9 (A) and 37.7 (B) against mask areas of about 15–20% (the all-fake map's IoU) "
                  "on Repaint-P2/CelebA-HQ")
    return {"id": "headline", "title": "Weak supervision localizes (Patches, setups A and B, above the trivial maps)",
            "rule": "the lower end of Patches' 95% IoU interval is above the upper end of the all-fake map's (the "
                    "all-real map scores 0)",
            "holds": all(verdicts) if len(verdicts) == 2 else None, "ours": lines, "paper": paper_line}


def patches_best(study: Study) -> dict:
    """(1) Patches outperforms GradCAM and Attention across settings and metrics."""
    cells, wins, lines = 0, 0, []
    paper_cells = paper_wins = 0
    for setup in "ABC":
        for name, key, k in (("IoU", "iou_lg", 0), ("PBCA", "pbca_lg", 1), ("AP", "ap", 2)):
            if key == "ap" and setup == "C":
                continue
            values = {m: _value(study.table2(m, setup), key) for m in METHOD_ORDER}
            theirs = {m: paper.TABLE2[setup][m][k] for m in METHOD_ORDER}
            paper_cells += 1
            paper_wins += max(theirs, key=theirs.get) == "patches"
            if any(v is None for v in values.values()):
                continue
            cells += 1
            best = max(values, key=values.get)
            wins += best == "patches"
            lines.append(f"{setup} {name}: best {best} ({', '.join(f'{m} {fmt(v)}' for m, v in values.items())})")
    holds = None if not cells else wins * 2 > cells
    return {"id": "patches-best", "title": "(1) Patches outperforms GradCAM and Attention across settings and metrics",
            "rule": "Patches is the best method in more than half of the 8 Table 2 cells",
            "holds": holds, "ours": [f"Patches best in {wins} of {cells} cells"] + lines,
            "paper": f"Patches best in {paper_wins} of {paper_cells} cells"}


def setup_b_detection(study: Study) -> dict:
    """(2) Detection under setup B is strong for every method."""
    values = {m: _value(study.table2(m, "B"), "ap") for m in METHOD_ORDER}
    known = {m: v for m, v in values.items() if v is not None}
    holds = None if not known else all(v >= STRONG_AP for v in known.values())
    return {"id": "setup-b-detection", "title": "(2) Detection under setup B (image labels, partial manipulations) is "
                                                "strong for every method",
            "rule": f"AP ≥ {STRONG_AP:.0f} for every method in setup B",
            "holds": holds, "ours": [", ".join(f"{m} AP {fmt(v)}" for m, v in values.items())],
            "paper": ", ".join(f"{m} AP {paper.TABLE2['B'][m][2]}" for m in METHOD_ORDER)}


def _effects(iou_c: float | None, iou_weak: list, iou_other_c: float | None, matrix: dict | None,
             names: list[str] | None = None) -> dict:
    """The three drops of Patches' IoU the paper compares: looser supervision (C minus the better of A and B),
    another source (C same minus C other), another generator (Figure 6's mean diagonal minus mean off-diagonal
    over the single-generator columns)."""
    effects = {"supervision": None, "dataset": None, "generator": None}
    weak = [v for v in iou_weak if v is not None]
    if iou_c is not None and weak:
        effects["supervision"] = iou_c - max(weak)
    if iou_c is not None and iou_other_c is not None:
        effects["dataset"] = iou_c - iou_other_c
    if matrix:
        diagonal, off = matrix_means(matrix)
        if diagonal is not None and off is not None:
            effects["generator"] = diagonal - off
    return effects


def matrix_means(matrix: dict) -> tuple[float | None, float | None]:
    """(mean diagonal, mean off-diagonal) IoU of Figure 6's single-generator columns."""
    diagonal, off = [], []
    for j, column in enumerate(matrix["columns"][:matrix["singles"]]):
        for i, row in enumerate(matrix["rows"]):
            value = matrix["values"][i][j]
            if value is None:
                continue
            (diagonal if row == column else off).append(value)
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return mean(diagonal), mean(off)


def _paper_matrix() -> dict:
    rows = list(paper.FIGURE6_GENERATORS)
    return {"columns": rows, "rows": rows, "singles": len(rows),
            "values": [[paper.FIGURE6[c][r] for c in rows] for r in rows]}


def supervision_vs_shift(study: Study) -> dict:
    """(3) Supervision matters less than the dataset and, most, the generator."""
    ours = _effects(_iou(study.table2("patches", "C")), [_iou(study.table2("patches", s)) for s in WEAK],
                    _iou(study.table3("C")), study.figure6())
    t2, t3 = paper.TABLE2, paper.TABLE3
    theirs = _effects(t2["C"]["patches"][0], [t2["A"]["patches"][0], t2["B"]["patches"][0]], t3["C"]["other"][0],
                      _paper_matrix())

    def order(e: dict) -> bool | None:
        if any(v is None for v in e.values()):
            return None
        return e["supervision"] < e["dataset"] and e["supervision"] < e["generator"]

    def text(e: dict) -> str:
        return ", ".join(f"{k} {fmt(v)}" for k, v in e.items()) + (
            "; largest: " + max(e, key=e.get) if all(v is not None for v in e.values()) else "")
    return {"id": "supervision-vs-shift", "title": "(3) Supervision matters less than the dataset and, most, the "
                                                   "generator (Patches)",
            "rule": "IoU drop from looser supervision (C minus the better of A, B) is smaller than the drop from "
                    "another source (C same minus C other, Table 3) and from another generator (Figure 6: mean "
                    "diagonal minus mean off-diagonal)",
            "holds": order(ours), "ours": ["IoU drops: " + text(ours)],
            "paper": "IoU drops: " + text(theirs) + (" (the rule holds on the paper's numbers)" if order(theirs)
                                                     else " (the rule fails on the paper's numbers)")}


def latent_hardest(study: Study) -> dict:
    """(4) Latent-diffusion manipulations are the hardest to localize, even in setup C."""
    matrix = study.figure6()
    ldm = next((g for g in (matrix or {}).get("rows", []) if study.paper_name(g) == "ldm"), None)
    if not matrix or ldm is None:
        return {"id": "latent-hardest", "title": "(4) Latent-diffusion manipulations are the hardest to localize, "
                                                 "even in setup C", "rule": "", "holds": None,
                "ours": ["no Figure 6 runs with a latent-diffusion test set"], "paper": ""}
    singles = matrix["columns"][:matrix["singles"]]
    diagonal = {g: matrix["values"][matrix["rows"].index(g)][singles.index(g)] for g in singles
                if g in matrix["rows"]}
    row_means = {g: float(np.nanmean([np.nan if v is None else v for v in matrix["values"][i]]))
                 for i, g in enumerate(matrix["rows"])}
    holds = (min(diagonal, key=diagonal.get) == ldm if ldm in diagonal else None) and \
        min(row_means, key=row_means.get) == ldm
    return {"id": "latent-hardest", "title": "(4) Latent-diffusion manipulations are the hardest to localize, even "
                                             "in setup C",
            "rule": f"{ldm} has the lowest IoU among the models trained and tested on one generator (Figure 6's "
                    f"diagonal), and the lowest mean IoU as a test set over all training sets",
            "holds": bool(holds), "ours": ["diagonal: " + ", ".join(f"{g} {fmt(v)}" for g, v in diagonal.items()),
                                           "mean over training sets, per test set: " + ", ".join(
                                               f"{g} {fmt(v)}" for g, v in row_means.items())],
            "paper": "diagonal: repaint 84.1, ldm 18.1, lama 88.7, pluralistic 86.4; ldm row mean 16.6 (others "
                     "37.3–61.6)"}


def check_findings(study: Study) -> dict:
    """{"items": [...], "markdown": the findings section}."""
    items = [headline(study), patches_best(study), setup_b_detection(study), supervision_vs_shift(study),
             latent_hardest(study)]
    word = {True: "**holds here**", False: "**does not hold here**", None: "not checked (runs missing)"}
    lines = []
    for item in items:
        lines.append(f"- {item['title']}: {word[item['holds']]}.")
        if item["rule"]:
            lines.append(f"  - rule: {item['rule']}")
        lines += [f"  - ours: {line}" for line in item["ours"]]
        if item["paper"]:
            lines.append(f"  - paper: {item['paper']}")
    agree = [i["id"] for i in items if i["holds"] is True]
    disagree = [i["id"] for i in items if i["holds"] is False]
    lines += ["", f"The built-in benchmark agrees with the paper on {len(agree)} of {len(items)} findings"
                  + (f" ({', '.join(agree)})" if agree else "")
                  + (f" and disagrees on {', '.join(disagree)}" if disagree else "") + "."]
    return {"items": items, "agree": agree, "disagree": disagree,
            "markdown": "\n".join(lines) + "\n"}
