"""`repro profiles check`: whether each primary can come out either way at a profile's size (claims.decidability).
The binomial threshold against a hand-computed tail; the known undecidable parts of the cpu profile found from its
own committed run; the standard profile's registered scope honoured; and every profile checked."""

from __future__ import annotations

import dataclasses
import math

import pytest
from scipy import stats

from claims.decidability import FAIL, PASS, UNKNOWN, check_profile, format_decidability, needed_accuracy
from repro.cli import main
from repro.config import PROFILES, get_profile
from tests.golden import FIXTURES


def test_needed_accuracy_is_the_first_count_whose_binomial_tail_is_below_alpha() -> None:
    for n, q, alpha in ((408, 0.684, 0.05), (872, 0.509, 0.05 / 30), (50, 0.5, 0.05)):
        need = needed_accuracy(n, q, alpha)
        k = round(need * n)
        assert stats.binomtest(k, n, q, alternative="greater").pvalue < alpha
        assert stats.binomtest(k - 1, n, q, alternative="greater").pvalue >= alpha
    assert math.isnan(needed_accuracy(3, 0.9, 0.01))  # 3/3 is not enough
    assert math.isnan(needed_accuracy(0, 0.5, 0.05))


@pytest.fixture(scope="module")
def glue(shared_glue):  # noqa: ANN001, ANN201
    return shared_glue


def _by(d, check: str, comparison: str, task: str):  # noqa: ANN001, ANN202
    return next(c for c in d.checks if c.check == check and c.comparison == comparison and c.task == task)


def test_cpu_profile_against_its_own_run_fails_where_the_design_could_not_decide(glue) -> None:  # noqa: ANN001
    d = check_profile(get_profile("cpu"), FIXTURES / "cpu", data_dir=glue)
    assert not d.passes
    # MRPC: the pilot's pretrained 0.695 is below the 0.723 the binomial test needs at 408 examples (majority 0.684)
    g = _by(d, "generalisation", "dev_accuracy", "mrpc")
    assert g.status == FAIL and "0.723" in g.detail and "0.684" in g.detail
    # both arms' basins censored at the same radius in every pair: undecidable at this size
    assert _by(d, "valid pairs", "basin_area_paper_units", "sst2").status == FAIL
    assert _by(d, "precision", "relative_change_high_vs_low", "sst2").status == PASS
    assert _by(d, "seeds", "dev_accuracy", "*").status == PASS


def test_standard_profile_honours_its_registered_scope_and_passes_where_its_pilot_says(glue) -> None:  # noqa: ANN001
    d = check_profile(get_profile("standard"), None, data_dir=glue)
    assert _by(d, "generalisation", "surface_rank_agreement", "mrpc").detail.startswith("out of the registered scope")
    assert _by(d, "generalisation", "surface_rank_agreement", "sst2").status == PASS
    assert _by(d, "generalisation", "surface_rank_agreement", "rte").status == UNKNOWN  # not piloted
    assert not d.failed
    # without the scope MRPC's scratch arm (pilot 0.691 < 0.723) fails
    wide = check_profile(dataclasses.replace(get_profile("standard"), generalization_tasks=None), None, data_dir=glue)
    assert _by(wide, "generalisation", "surface_rank_agreement", "mrpc").status == FAIL


def test_two_seeds_fail_the_seed_check() -> None:
    d = check_profile(dataclasses.replace(get_profile("smoke"), seeds=(0, 1)), None, data_dir="/nonexistent")
    assert {c.status for c in d.checks if c.check == "seeds"} == {FAIL}
    assert {c.status for c in d.checks if c.check == "generalisation"} == {UNKNOWN}  # no data: said, not guessed


@pytest.mark.parametrize("name", PROFILES.names())
def test_every_profile_can_be_checked_and_every_primary_is_covered(name: str, glue) -> None:  # noqa: ANN001
    from claims import CLAIMS

    d = check_profile(get_profile(name), None, data_dir=glue)
    primaries = {c.name for n in CLAIMS.names() for c in CLAIMS.get(n).comparisons if c.primary}
    assert {c.comparison for c in d.checks} == primaries
    assert all(c.status in (PASS, FAIL, UNKNOWN) for c in d.checks)
    assert f"decidability of profile {name}" in format_decidability(d)


def test_cli_exit_status_says_whether_a_primary_cannot_be_decided(glue, capsys, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "d.json"
    assert main(["profiles", "check", "cpu", "--reference", str(FIXTURES / "cpu"), "--data-dir", str(glue),
                 "--json", str(out)]) == 1
    assert "some primaries cannot come out either way" in capsys.readouterr().out and out.exists()
    assert main(["profiles", "check", "standard", "--data-dir", str(glue)]) == 0
    assert main(["profiles", "check", "cpu", "--reference", str(tmp_path)]) == 2
    assert "no claims.json" in capsys.readouterr().err
