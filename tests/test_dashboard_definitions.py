"""Every shipped dashboard definition loads; mistakes are ConfigErrors naming file:line and key; users add panels."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbench.dashboards.spec import DEFINITIONS, KINDS, load_page, load_pages
from genbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(DEFINITIONS.glob("*.yaml"))


def test_definitions_are_package_data() -> None:
    """Inside the package, so an installed genbench (a wheel, not a checkout) builds every page; pyproject.toml's
    package-data names their folder (tests/test_wheel.py installs the wheel and builds them)."""
    import tomllib

    assert DEFINITIONS == ROOT / "platform/genbench/dashboards/definitions" and SHIPPED
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "dashboards/definitions/*.yaml" in package_data["genbench"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_definition_loads_and_validates(path: Path) -> None:
    page = load_page(path)
    assert page.panels and all(p.kind in KINDS for p in page.panels)
    assert len({p.id for p in page.panels}) == len(page.panels)


def test_pages_come_in_their_order() -> None:
    assert [p.name for p in load_pages()] == ["stability", "quality", "cost"]


def _write(tmp_path: Path, panels: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"page: extra\ntitle: Extra\npanels:\n{panels}")
    return path


@pytest.mark.parametrize(
    "panels,line,key,needle",
    [
        (
            "  - id: a\n    kind: by_grup\n    columns: {metric: objective, group: family}\n",
            5,
            "panels[0].kind",
            "did you mean 'by_group'",
        ),
        (
            "  - id: a\n    kind: by_group\n    columns:\n      metric: quality.mods\n      group: family\n",
            7,
            "panels[0].columns.metric",
            "did you mean 'quality.modes'",
        ),
        (
            "  - id: a\n    kind: scatter\n    columns:\n      x: config.optim.lr_gg\n"
            "      y: objective\n      group: family\n",
            7,
            "panels[0].columns.x",
            "did you mean 'config.optim.lr_g'",
        ),
        (
            "  - id: a\n    kind: by_group\n    columns: {metric: objective, grop: family}\n",
            6,
            "panels[0].columns",
            "grop",
        ),
        ("  - id: a\n    kind: rates\n    colums: {group: family}\n", 6, "panels[0].colums", "did you mean 'columns'"),
        ("  - id: a\n    kind: rates\n    columns: {}\n", 6, "panels[0].columns", "needs a column for 'group'"),
        (
            "  - id: a\n    kind: by_group\n    columns: {metric: searched, group: family}\n",
            6,
            "panels[0].columns.metric",
            "only fits a list role",
        ),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, panels: str, line: int, key: str, needle: str) -> None:
    path = _write(tmp_path, panels)
    with pytest.raises(ConfigError) as info:
        load_page(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: {key.split('.columns.')[0] if 'grop' in needle else key}")
    assert needle in message


def test_a_duplicate_panel_id_and_a_bad_page_name_are_refused(tmp_path: Path) -> None:
    twice = "  - {id: a, kind: rates, columns: {group: family}}\n" * 2
    with pytest.raises(ConfigError, match="used twice"):
        load_page(_write(tmp_path, twice))
    bad = tmp_path / "bad.yaml"
    bad.write_text("page: my page\npanels: [{kind: rates, columns: {group: family}}]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:1: page: expected a page name"):
        load_page(bad)


def test_a_user_adds_a_panel_by_editing_a_definition(tmp_path: Path) -> None:
    from genbench.dashboards.panels import Context, render
    from genbench.dashboards.site import load_context
    from synthetic_study import synthetic_study

    path = _write(
        tmp_path, "  - id: peak-memory\n    kind: by_group\n    columns: {metric: quality.hq_fraction, group: family}\n"
    )
    page = load_page(path)
    synthetic_study(str(tmp_path / "results"), configs=5, seeds=2)
    ctx: Context = load_context(str(tmp_path / "results"))
    ctx.trials["quality.hq_fraction"] = 0.5
    fig = render(page.panels[0], ctx)
    assert (
        len(fig.data) == 5
        and "quality.hq_fraction (fraction of samples; higher is better)" == fig.layout.xaxis.title.text
    )


def test_where_keeps_only_the_named_runs_and_checks_its_columns(tmp_path: Path) -> None:
    from genbench.dashboards.panels import Missing, NotApplicable, render
    from genbench.dashboards.site import load_context
    from synthetic_study import synthetic_study

    with pytest.raises(ConfigError, match=r"extra.yaml:7: panels\[0\].where.famly: unknown column"):
        load_page(_write(tmp_path, "  - kind: rates\n    columns: {group: family}\n    where:\n      famly: [gan]\n"))
    page = load_page(
        _write(
            tmp_path,
            "  - kind: by_group\n    columns: {metric: objective, group: family}\n"
            "    where: {family: [flow, vae]}\n  - kind: rates\n"
            "    columns: {group: family}\n    where: {family: nothing}\n"
            "  - kind: rates\n    columns: {group: family}\n"
            "    where: {config.gan.loss: [nothing]}\n",
        )
    )
    synthetic_study(str(tmp_path / "results"), configs=10, seeds=1)
    ctx = load_context(str(tmp_path / "results"))
    fig = render(page.panels[0], ctx)
    assert sorted(t.name.split(" (")[0] for t in fig.data) == ["flow", "vae"]
    with pytest.raises(NotApplicable, match=r"the study has no runs of family nothing"):
        render(page.panels[1], ctx)
    with pytest.raises(Missing, match=r"no runs with gan.loss in \['nothing'\]"):  # in the study's words
        render(page.panels[2], ctx)


def test_a_title_names_only_the_known_fields(tmp_path: Path) -> None:
    page = load_page(
        _write(
            tmp_path, "  - kind: rates\n    title: Runs per {variant} ({objective})\n    columns: {group: variant}\n"
        )
    )
    assert page.panels[0].title == "Runs per {variant} ({objective})"
    with pytest.raises(ConfigError, match=r"extra.yaml:\d+: panels\[0\].title: unknown title field \{objectiv\}"):
        load_page(_write(tmp_path, "  - kind: rates\n    title: Runs ({objectiv})\n    columns: {group: variant}\n"))


def test_a_page_title_speaks_of_families_in_a_study_of_several(tmp_path: Path) -> None:
    from genbench.dashboards.site import build_page, load_context
    from synthetic_study import synthetic_study

    path = tmp_path / "titled.yaml"
    panels = "panels:\n  - kind: rates\n    columns: {group: variant}\n"
    path.write_text(f"page: titled\ntitle: How each {{variant}} trains\n{panels}")
    titled = load_page(path)
    synthetic_study(str(tmp_path / "vf"), configs=2, seeds=1, families=("vae", "flow"))
    synthetic_study(str(tmp_path / "gan"), configs=2, seeds=1, families=("gan",))
    assert build_page(titled, load_context(str(tmp_path / "vf"))).heading == "How each family trains"
    assert build_page(titled, load_context(str(tmp_path / "gan"))).heading == "How each variant trains"
    path.write_text(f"page: titled\ntitle: How each {{famly}} trains\n{panels}")
    with pytest.raises(ConfigError, match=r"titled.yaml:2: title: unknown title field \{famly\}"):
        load_page(path)
