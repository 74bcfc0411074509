"""Pins of two edge cases of the curvature package (issue 19, from the mutation notes): zero iterations are refused,
and Hutch++ on an operator no larger than its 3m matvecs computes the exact trace from the standard basis."""

from __future__ import annotations

import pytest
import torch

from repro.curvature import LambdaOperator, hutchpp_trace, lanczos, power_iteration


def _sym(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return (m + m.T) / 2 + 3.0 * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("solver", [lanczos, power_iteration], ids=["lanczos", "power"])
@pytest.mark.parametrize("max_iter", [0, -1])
def test_zero_iterations_are_refused_before_any_matvec(solver, max_iter: int) -> None:
    op = LambdaOperator(_sym(5, 0))
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        solver(op, 1, max_iter=max_iter)
    assert op.num_matvecs == 0
    assert solver(op, 1, max_iter=1).num_matvecs >= 1  # one iteration is allowed


class _Spy:
    def __init__(self, A: torch.Tensor) -> None:
        self.A, self.seen = A, []

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.seen.append(v.clone())
        return self.A @ v


@pytest.mark.parametrize(("n", "budget"), [(12, 12), (5, 99), (8, 2), (9, 9)])
def test_hutchpp_no_larger_than_its_matvecs_is_the_exact_basis_trace(n: int, budget: int) -> None:
    """size ≤ 3·max(3, budget//3): n matvecs on e_1..e_n, the exact trace, stderr 0, method 'exact' -- never more
    matvecs than Hutch++ would have spent (3m), and never the old 2m + n of which m were projected to zero."""
    A = _sym(n, n)
    spy = _Spy(A)
    t = hutchpp_trace(LambdaOperator(spy, size=n), num_matvecs=budget, seed=3)
    assert [int(torch.argmax(v)) for v in spy.seen] == list(range(n))
    assert all(torch.equal(v, torch.eye(n, dtype=torch.float64)[i]) for i, v in enumerate(spy.seen))
    assert t.estimate == pytest.approx(float(torch.trace(A)), rel=1e-14)
    assert (t.stderr, t.num_samples, t.num_matvecs, t.method, t.seed) == (0.0, n, n, "exact", 3)
    assert t.num_matvecs <= 3 * max(3, budget // 3)


def test_hutchpp_one_past_the_boundary_is_hutchpp() -> None:
    """n = 3m + 1: the sketch, the exact part and the probes, 3m matvecs, a nonzero standard error."""
    A = _sym(13, 1)
    t = hutchpp_trace(LambdaOperator(A), num_matvecs=12, seed=0)
    assert (t.method, t.num_matvecs, t.num_samples) == ("hutch++", 12, 4) and t.stderr > 0
