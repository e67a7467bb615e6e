"""The study's experiment files (parts, test data, cross test sets) and its findings logic on known numbers."""

from __future__ import annotations

import io

import pytest

from weakloc.errors import ConfigError
from weakloc.experiment.spec import load_experiment
from weakloc.experiment.study import paper
from weakloc.experiment.study.findings import Study, check_findings, matrix_means

GENERATORS = ["repaint-p2-9k", "ldm", "lama", "pluralistic"]


def test_paper_preset_is_the_papers_runs_with_official_settings():
    from weakloc.train.loop import resolve

    exp = load_experiment("study-paper", ["data.root=/data/wacv_data"])
    parts = [run.part for run in exp.runs]
    assert parts.count("table2") == 9 and parts.count("table3") == 3 and parts.count("figure6") == 8
    other = next(run for run in exp.runs if run.name == "patches-B-ffhq")
    assert exp.data_config(other).dataset == "ffhq" and exp.test_config(other).dataset == "celebahq"
    wo_ldm = next(run for run in exp.runs if run.name == "patches-C-wo-ldm")
    assert exp.data_config(wo_ldm).local == ["repaint-p2-9k", "lama", "pluralistic"]
    assert exp.cross_config(wo_ldm, "ldm").local == ["ldm"] and wo_ldm.cross == GENERATORS
    patches_b = resolve(exp.train_config(next(r for r in exp.runs if r.name == "patches-B")))
    assert (patches_b.lr, patches_b.batch_size, patches_b.epochs, patches_b.iters_per_epoch) == (1e-3, 64, 100, 500)
    assert exp.data_config(exp.runs[0]).input_size == 299


def test_study_presets_load_and_robustness_goes_to_the_marked_runs():
    for name in ("study", "study-quick"):
        exp = load_experiment(name)
        assert {run.name for run in exp.robustness_runs()} == {"patches-A", "patches-B", "patches-C"}
        assert sum(1 for run in exp.runs if run.cross) == 8  # Figure 6's eight columns


def test_init_from_names_an_earlier_run_and_pulls_it_into_only(tmp_path):
    from weakloc.experiment.run import _with_sources

    head = 'table = "study"\n[data]\nlayout = "builtin"\n'
    patches = '[[runs]]\nmethod = "patches"\nsetup = "A"\n'
    gradcam = '[[runs]]\nmethod = "gradcam"\nsetup = "A"\ninit_from = "patches-A"\n'
    spec = tmp_path / "order.toml"
    spec.write_text(head + patches + gradcam)
    exp = load_experiment(spec)
    assert exp.runs[1].init_from == "patches-A" and exp.runs[0].init_from == ""
    assert _with_sources(exp.runs, ["gradcam-A"]) == {"gradcam-A", "patches-A"}
    assert _with_sources(exp.runs, ["patches-A"]) == {"patches-A"}
    spec.write_text(head + gradcam + patches)
    with pytest.raises(ConfigError, match="init_from = 'patches-A' is listed after it"):
        load_experiment(spec)
    spec.write_text(head + gradcam.replace("patches-A", "patches-Z") + patches)
    with pytest.raises(ConfigError, match="'patches-Z' is not in the experiment"):
        load_experiment(spec)
    spec.write_text(head + patches + gradcam + 'train = { init = "w.safetensors" }\n')
    with pytest.raises(ConfigError, match="both init_from and train.init"):
        load_experiment(spec)


def test_study_starts_gradcam_and_attention_from_the_same_setup_patches_run():
    for name in ("study", "study-quick"):
        exp = load_experiment(name)
        starts = {run.name: run.init_from for run in exp.runs if run.method != "patches"}
        assert starts == {f"{m}-{s}": f"patches-{s}" for m in ("gradcam", "attention") for s in "ABC"}, name


def test_run_names_must_differ(tmp_path):
    spec = tmp_path / "dup.toml"
    spec.write_text('table = "study"\n[data]\nlayout = "builtin"\n[[runs]]\nmethod = "patches"\nsetup = "A"\n'
                    '[[runs]]\nmethod = "patches"\nsetup = "A"\n')
    with pytest.raises(ConfigError, match="run names must differ"):
        load_experiment(spec)


def _as_results() -> dict:
    """The paper's own numbers in the shape of results.json (Table 2, Table 3, Figure 6)."""
    results = {}
    for setup, row in paper.TABLE2.items():
        for method, (iou, pbca, ap) in row.items():
            res = {"method": method, "setup": setup, "part": "table2", "trained_on": {"dataset": "celebahq"},
                   "localization": {"iou_lg": iou, "pbca_lg": pbca},
                   "intervals": {"localization": {"iou_lg": [iou - 2, iou + 2]},
                                 "baselines": {"all-fake": {"iou_lg": [14.0, 18.0]}}}}
            if ap is not None:
                res["detection"] = {"ap": ap}
            results[f"{method}-{setup}"] = res
    for setup, row in paper.TABLE3.items():
        iou, pbca, ap = row["other"]
        results[f"patches-{setup}-ffhq"] = {"method": "patches", "setup": setup, "part": "table3",
                                            "trained_on": {"dataset": "ffhq"},
                                            "localization": {"iou_lg": iou, "pbca_lg": pbca}}
    names = dict(zip(paper.FIGURE6_GENERATORS, GENERATORS))
    for column, tested in paper.FIGURE6.items():
        if column.startswith("w/o "):
            trained = [g for p, g in names.items() if p != column[4:]]
        else:
            trained = [names[column]]
        results[f"f6-{column}"] = {"method": "patches", "setup": "C", "part": "figure6",
                                   "trained_on": {"local": trained},
                                   "cross": {names[p]: {"localization": {"iou_lg": v}} for p, v in tested.items()}}
    return results


def test_figure6_matrix_is_read_from_the_cross_results():
    matrix = Study(None, _as_results()).figure6()
    assert matrix["rows"] == GENERATORS and matrix["singles"] == 4
    assert matrix["columns"] == GENERATORS + [f"w/o {g}" for g in GENERATORS]
    assert matrix["values"][1][0] == 19.5  # tested on ldm, trained on repaint
    assert matrix["values"][0][5] == 85.2  # tested on repaint, trained on all but ldm
    diagonal, off = matrix_means(matrix)
    assert diagonal == pytest.approx((84.1 + 18.1 + 88.7 + 86.4) / 4)
    assert off == pytest.approx((11.5 + 10.3 + 0.2 + 19.5 + 11.4 + 0.5 + 38.0 + 7.5 + 44.9 + 41.4 + 11.5 + 48.5) / 12)


def test_findings_on_the_papers_own_numbers_hold():
    findings = {item["id"]: item for item in check_findings(Study(None, _as_results()))["items"]}
    assert findings["headline"]["holds"] is True  # 64.9 and 37.7 against an all-fake map of 14-18
    assert findings["patches-best"]["holds"] is True and "7 of 8" in findings["patches-best"]["ours"][0]
    assert findings["setup-b-detection"]["holds"] is True
    assert findings["supervision-vs-shift"]["holds"] is True
    assert findings["latent-hardest"]["holds"] is True


def test_findings_fail_when_the_numbers_say_otherwise():
    results = _as_results()
    results["gradcam-B"]["detection"]["ap"] = 70.0
    results["f6-ldm"]["cross"]["ldm"]["localization"]["iou_lg"] = 95.0
    results["patches-B"]["intervals"]["localization"]["iou_lg"] = [10.0, 20.0]
    findings = {item["id"]: item for item in check_findings(Study(None, results))["items"]}
    assert findings["setup-b-detection"]["holds"] is False
    assert findings["latent-hardest"]["holds"] is False
    assert findings["headline"]["holds"] is False


def test_model_digest_ignores_evaluation_fields_but_not_weights(tmp_path):
    import torch

    from weakloc.methods import build_model
    from weakloc.train.checkpoint import model_digest, save_checkpoint, update_card

    model = build_model("patches", "C", {})
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"method": "patches", "setup": "C"})
    before = model_digest(path)
    update_card(path, test_metrics={"localization": {"iou_lg": 12.0}}, test_data={"root": "x"})
    assert model_digest(path) == before  # an evaluation writing its metrics does not invalidate the cache
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(path, model, {"method": "patches", "setup": "C"})
    assert model_digest(path) != before


def test_stage_cache_recomputes_only_when_its_key_changes(tmp_path):
    import io

    from weakloc.experiment.stages import StagePlan, cached

    calls = []

    def compute():
        calls.append(1)
        return {"iou": 0.5 + len(calls)}

    first, computed = cached(tmp_path, {"checkpoint": "abc", "threshold": 0.5}, compute)
    again, recomputed = cached(tmp_path, {"checkpoint": "abc", "threshold": 0.5}, compute)
    assert computed and not recomputed and first == again == {"iou": 1.5} and len(calls) == 1
    changed, computed = cached(tmp_path, {"checkpoint": "abd", "threshold": 0.5}, compute)
    assert computed and changed == {"iou": 2.5}

    stream = io.StringIO()
    plan = StagePlan("study", tmp_path / "stages.json", stream=stream)
    plan.add("train a", 10, lambda: True)
    plan.add("evaluate a", 1, lambda: False)
    timings = plan.run()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[study 1/2] train a · 0:00 elapsed") and "about" in lines[1]
    assert timings["train a"]["reused"] is False and timings["evaluate a"]["reused"] is True


def test_the_estimate_scales_each_kind_by_its_own_rate_and_not_by_the_benchmark(tmp_path):
    from weakloc.experiment import stages
    from weakloc.experiment.stages import StagePlan

    plan = StagePlan("study", tmp_path / "stages.json", stream=io.StringIO())
    for name, weight in (("benchmark", 100), ("train a", 10), ("evaluate a", 2), ("train b", 30), ("evaluate b", 4)):
        plan.add(name, weight, lambda: True)
    assert plan._estimate(1, {"benchmark": [100.0, 50.0]}) is None  # images generated say nothing of training
    # train at 1 s per unit, evaluate unknown: it takes the mean of the known kinds other than the benchmark
    rates = {"benchmark": [100.0, 50.0], "train": [10.0, 10.0]}
    assert plan._estimate(3, rates) == pytest.approx(30 * 1.0 + 4 * 1.0)
    rates["evaluate"] = [2.0, 8.0]  # 4 s per unit
    assert plan._estimate(3, rates) == pytest.approx(30 * 1.0 + 4 * 4.0)
    assert stages._kind("evaluate b") == "evaluate"


def test_baseline_rows_sit_under_their_columns_in_table_2_and_table_3():
    from weakloc.experiment.study.report import _baseline_rows

    res = {"baselines": {"localization": {"all-fake": {"iou_lg": 19.5, "pbca_lg": 19.5},
                                          "all-real": {"iou_lg": 0.0, "pbca_lg": 80.5}}}}
    table2 = [row.split(" | ")[3:] for row in _baseline_rows(res, 3, 3)]  # IoU x3, PBCA x3, AP x3
    table3 = [row.split(" | ")[3:] for row in _baseline_rows(res, 3, 2, by_metric=False)]  # (IoU, PBCA, AP) x2
    assert [c.strip(" |") for c in table2[1]] == ["0.0"] * 3 + ["80.5"] * 3 + ["50.0"] * 3
    assert [c.strip(" |") for c in table3[1]] == ["0.0", "80.5", "50.0"] * 2
