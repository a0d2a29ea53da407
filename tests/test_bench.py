"""genbench bench: the harness's statistics, case selection, the CLI's errors and one case end to end (no timings)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from genbench.bench import harness
from genbench.bench.harness import CASES, CaseResult, Context, Target, paired_ratios, run_bench, select, spread
from genbench.cli import BENCH_CASES, main
from genbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_spread_median_quartiles_and_range():
    s = spread([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.low, s.high, s.n) == (2.5, 1.0, 10.0, 4)
    assert (s.q1, s.q3) == (1.75, 4.75)  # inclusive quartiles of 1, 2, 3, 10
    one = spread([0.5])
    assert (one.median, one.low, one.high, one.q1, one.q3) == (0.5, 0.5, 0.5, 0.5, 0.5)
    assert "1 repeat" in one.text() and "n=4" in s.text()
    with pytest.raises(ValueError):
        spread([])


def test_paired_ratios_divide_each_repeat_by_its_own_baseline():
    assert paired_ratios([2.0, 6.0, 3.3], [1.0, 3.0, 3.0]) == pytest.approx([2.0, 2.0, 1.1])
    assert spread(paired_ratios([1.1, 1.0, 5.0], [1.0, 1.0, 1.0])).median == pytest.approx(1.1)  # robust to one outlier
    with pytest.raises(ValueError, match="2 measurements against 1"):
        paired_ratios([1.0, 2.0], [1.0])


def test_targets_compare_in_the_right_direction():
    assert Target("loop", 1.02, 1.03, "<=").met and not Target("loop", 1.04, 1.03, "<=").met
    assert Target("conc", 1.9, 1.8, ">=").met and not Target("conc", 1.5, 1.8, ">=").met
    assert "NOT MET" in Target("conc", 1.5, 1.8, ">=").text()


def test_every_issue_case_is_registered_and_listed_by_the_cli():
    assert select([]) == list(BENCH_CASES)
    assert select(["startup", "loop"]) == ["loop", "startup"]  # run in registration order


def test_unknown_case_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'loop'"):
        select(["loopp"])


def test_cli_bad_case_exits_2_before_running_anything(capsys, tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--case", "sampling", "nope", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--case: unknown bench case 'nope'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.fixture
def fake_cases(monkeypatch):
    """Two instant cases in the registry: one reports a ratio and a target, one fails."""

    def ratio_case(ctx: Context) -> CaseResult:
        ctx.say("  working")
        ratios = spread(paired_ratios([1.2, 1.0, 1.1], [1.0, 1.0, 1.0]))
        target = Target("fake ratio", ratios.median, 1.03, "<=")
        return CaseResult([f"ratio {ratios.text()}"], {"ratio": ratios}, [target])

    def broken_case(ctx: Context) -> CaseResult:
        raise RuntimeError("no such device")

    for name, fn in (("fake_ratio", ratio_case), ("fake_broken", broken_case)):
        monkeypatch.setitem(CASES._entries, name, fn)
        monkeypatch.setitem(CASES._docs, name, f"{name} for tests")


def test_run_bench_prints_every_case_and_writes_the_json(fake_cases, tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    assert run_bench(["fake_ratio"], quick=True, json_path=str(out)) == 0
    printed = capsys.readouterr().out
    assert "[1/1] fake_ratio" in printed and "working" in printed and f"JSON: {out.resolve()}" in printed
    assert "target fake ratio <= 1.03: 1.1 -> NOT MET" in printed
    report = json.loads(out.read_text())
    case = report["cases"]["fake_ratio"]
    assert case["ratio"]["median"] == pytest.approx(1.1) and case["ratio"]["n"] == 3
    assert case["targets"][0]["met"] is False
    assert report["quick"] is True and len(report["machine"]["loadavg"]) == 3


def test_a_failing_case_is_reported_and_the_others_still_run(fake_cases, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert run_bench(["fake_broken", "fake_ratio"], quick=True, json_path=str(out)) == 1
    printed = capsys.readouterr().out
    assert "fake_broken: FAILED (RuntimeError: no such device)" in printed
    report = json.loads(out.read_text())
    assert "error" in report["cases"]["fake_broken"] and "ratio" in report["cases"]["fake_ratio"]


def test_default_json_goes_to_benchmarks_results():
    assert str(harness.default_json(True)) == "benchmarks/results/bench-quick.json"
    assert str(harness.default_json(False)) == "benchmarks/results/bench.json"


def test_help_and_bench_help_import_neither_torch_nor_ray():
    probe = (
        "import sys\nfrom genbench.cli import main\n"
        "for argv in (['--help'], ['bench', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'ray', 'optuna', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


HEAVY = ("torch", "ray", "optuna", "pyarrow", "pandas", "plotly", "numpy")


def _validate_imports(files: list[str]) -> list[str]:
    """The heavy modules `genbench validate FILES` leaves imported, in a fresh process (exit 0 checked)."""
    probe = (
        "import sys\nfrom genbench.cli import main\n"
        f"code = main(['validate', *{files!r}])\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    code, _, heavy = out.strip().splitlines()[-1].partition(" ")
    assert code == "0", out
    return ast.literal_eval(heavy)  # the list the probe printed


def test_validate_of_every_shipped_study_dashboard_and_profile_imports_nothing_heavy():
    files = sorted(
        str(p.relative_to(ROOT))
        for d in ("platform/genbench/studies", "platform/genbench/dashboards/definitions", "clusters")
        for p in (ROOT / d).rglob("*.yaml")
        if p.name not in ("aws-gpu.yaml", "gcp-gpu.yaml")
    )
    assert len(files) >= 12
    assert _validate_imports(files) == []


def test_validate_of_a_ray_launcher_file_imports_ray_for_its_checks_but_not_torch():
    assert _validate_imports(["clusters/aws-gpu.yaml"]) == ["ray"]  # Ray's own schema and consistency checks


def test_loop_case_variants_train_side_by_side_on_a_tiny_gan():
    from genbench.bench import loop
    from genbench.data import load_dataset
    from genbench.families.configs.gan import DEBUG

    cfg = loop._config("gan", "grid25", 30, {**DEBUG, "train.batch_size": 16, "data.n_train": 500, "data.n_test": 100})
    data = load_dataset(cfg.data)
    runs = {"hand": loop._hand_gan(cfg, data), **{n: b(cfg, data) for n, b in loop.VARIANTS.items()}}
    steps_seen = []
    genbench_run = runs["genbench"]
    runs["genbench"] = lambda steps: (genbench_run(steps), steps_seen.append(steps))
    times = loop.interleaved(runs, rounds=2, block_steps=10)
    assert set(times) == {"hand", "genbench", "train_step only"}
    assert all(len(v) == 2 and all(t >= 0 for t in v) for v in times.values())  # the warm-up round is not counted
    assert steps_seen == [10, 10, 10]


def test_sweep_gaps_and_throughput_from_trial_rows():
    from genbench.bench.sweep import gaps_s, throughput

    rows = [
        {"start_time": 10.0, "end_time": 12.0, "steps": 100},
        {"start_time": 0.0, "end_time": 4.0, "steps": 100},
        {"start_time": 4.5, "end_time": 9.9, "steps": 100},
    ]
    assert gaps_s(rows) == pytest.approx([0.5, 0.1])
    assert throughput(rows) == pytest.approx(300 / 12.0)


def test_loop_alone_is_timed_around_a_free_step_with_the_real_scalars():
    from genbench.bench import loop
    from genbench.data import load_dataset
    from genbench.families import FAMILIES
    from genbench.families.configs.gan import DEBUG

    cfg = loop._config("gan", "grid25", 30, {**DEBUG, "train.batch_size": 16, "data.n_train": 500, "data.n_test": 100})
    data = load_dataset(cfg.data)
    null = loop.NullFamily(FAMILIES.get("gan").build(cfg, data), data.train[:16])
    assert set(null.train_step(data.train[:16])) >= {"train.loss_d", "train.grad_norm_g"}
    assert set(null.modules()) == {"generator", "discriminator"}
    cost = loop.loop_cost_s(cfg, data, steps=20, repeats=2)
    assert cost.n == 2


def test_the_loop_case_end_to_end_on_a_tiny_gan(monkeypatch, tmp_path, capsys):
    from genbench.bench import loop
    from genbench.families.configs.gan import DEBUG

    tiny = {**DEBUG, "train.batch_size": 16, "data.n_train": 500, "data.n_test": 100}
    monkeypatch.setattr(loop, "SCENARIOS", (("gan", "grid25", tiny),))
    monkeypatch.setitem(loop.BLOCKS, "gan", ((10, 2), (10, 2)))
    out = tmp_path / "loop.json"
    assert run_bench(["loop"], quick=True, json_path=str(out)) == 0
    printed = capsys.readouterr().out
    assert "genbench / hand" in printed and "the loop alone" in printed and "target gan genbench loop / hand" in printed
    case = json.loads(out.read_text())["cases"]["loop"]
    scenario = case["gan/grid25"]
    assert scenario["rounds"] == 2 and set(scenario["seconds"]) == {"hand", "genbench", "train_step only"}
    assert scenario["ratios"]["genbench / hand"]["n"] == 2 and 0 < scenario["eval"]["share"] < 1
    assert [t["name"] for t in case["targets"]] == ["gan genbench loop / hand"]


def test_evaluation_case_shares_add_up_for_one_family() -> None:
    from genbench.bench import loop

    said: list[str] = []
    line, share = loop._family_share(Context(quick=True, say=said.append), "gan", "grid25")
    run_s = share["steps"] * share["step_s"] + share["evals"] * share["eval_s"]
    assert share["evals"] == 4 and share["steps"] == 2000  # the GAN's defaults: 2,000 steps, evaluated every 500
    assert 0 < share["share"] < 1 and abs(share["share"] - share["evals"] * share["eval_s"] / run_s) < 1e-12
    assert share["measured_n_samples"] == 500 and share["likelihood_s"] >= 0
    assert line.split()[:2] == ["gan", "grid25"] and f"{share['share']:.1%}" in line
