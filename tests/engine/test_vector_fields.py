"""ParamVector edge cases, the trajectory projection's stored Gram matrix and tolerance, and the metadata and
dtypes of every direction kind (mutation-testing pass, issue 10)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repro.landscape import (
    ONE_DIM_POLICY,
    ParamVector,
    cross_task_direction,
    filter_normalized_direction,
    optimization_direction,
    param_names,
    pca_directions,
    project_onto_plane,
)


def _v(*values: float, name: str = "p", dtype: torch.dtype = torch.float64) -> ParamVector:
    return ParamVector((name,), (torch.tensor(values, dtype=dtype),))


# -- ParamVector -----------------------------------------------------------------------------------------------------


def test_cosine_with_a_zero_vector_is_zero_and_small_vectors_are_not_special() -> None:
    """A zero direction (e.g. δ2 on a group the partner task never changed) has no angle: report 0, not a
    ZeroDivisionError or a perfect 1. Vectors shorter than 1 are ordinary: parallel ones have cosine 1."""
    a, z = _v(3.0, 4.0), _v(0.0, 0.0)
    assert a.cosine(z) == 0.0 and z.cosine(a) == 0.0 and z.cosine(z) == 0.0
    assert _v(0.3, 0.4).cosine(_v(0.03, 0.04)) == pytest.approx(1.0)
    assert a.cosine(_v(0.03, 0.04)) == pytest.approx(1.0) and _v(0.03, 0.04).cosine(a) == pytest.approx(1.0)
    assert _v(0.3, 0.0).cosine(_v(0.0, 0.5)) == pytest.approx(0.0, abs=1e-15)


def test_empty_vector_has_norm_zero_and_flattens_to_nothing() -> None:
    """A group selection that matches no parameter gives an empty vector: its norm is 0 (so relative changes and
    cosines take their zero branches) and its flat form has no entries (a Lanczos vector of length 0, not 1)."""
    e = ParamVector((), ())
    assert e.norm() == 0.0
    assert e.flatten().numel() == 0
    two = ParamVector(("a", "b"), (torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])))
    assert two.flatten().tolist() == [1.0, 2.0, 3.0]


def test_unflatten_keeps_each_tensors_dtype() -> None:
    """Eigenvectors come back in float64; unflattened onto a float32 model vector they must be float32 again, or
    every later in-place update of the model mixes dtypes."""
    like = ParamVector(("w", "b"), (torch.zeros(2, 2), torch.zeros(3)))
    out = like.unflatten(torch.arange(7, dtype=torch.float64))
    assert [t.dtype for t in out.tensors] == [torch.float32, torch.float32]
    assert out.tensors[0].tolist() == [[0.0, 1.0], [2.0, 3.0]] and out.tensors[1].tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="8 entries, expected 7"):  # e.g. an eigenvector of another model
        like.unflatten(torch.arange(8, dtype=torch.float64))


def test_unknown_parameter_names_are_an_error_naming_them() -> None:
    """A typo in a layer-group definition must not silently give a smaller (or empty) group."""
    m = nn.Linear(2, 2)
    assert param_names(m, ["bias"]) == ("bias",)
    with pytest.raises(KeyError, match="encoder.layer.99.weight"):
        param_names(m, ["weight", "encoder.layer.99.weight"])


# -- project_onto_plane ----------------------------------------------------------------------------------------------


def test_projection_stores_the_gram_matrix_entry_by_entry() -> None:
    """The stored Gram matrix [[d1·d1, d1·d2], [d2·d1, d2·d2]] is what a reader uses to turn (α, β) into distances
    and angles; with all three values different (4, 2, 10) any swapped entry shows."""
    d1 = ParamVector(("p",), (torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64),))
    d2 = ParamVector(("p",), (torch.tensor([1.0, 3.0, 0.0], dtype=torch.float64),))
    origin = ParamVector(("p",), (torch.zeros(3, dtype=torch.float64),))
    snap = origin.clone().axpy_(0.5, d1).axpy_(-1.0, d2)
    p = project_onto_plane([snap], origin, d1, d2)
    assert p.gram == ((4.0, 2.0), (2.0, 10.0))
    assert p.alphas[0] == pytest.approx(0.5) and p.betas[0] == pytest.approx(-1.0)


@pytest.mark.parametrize("d2_scale", [2.0, 0.0])
def test_projection_onto_a_degenerate_plane_is_refused(d2_scale: float) -> None:
    """δ2 parallel to δ1 (e.g. the partner task's displacement taken from the run itself) or zero spans no plane:
    the projection must refuse with a message that says so, not return meaningless coordinates."""
    d1 = ParamVector(("p",), (torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64),))
    d2 = d1 * d2_scale
    origin = d1.zeros_like()
    with pytest.raises(ValueError, match="linearly dependent"):
        project_onto_plane([origin], origin, d1, d2)


def _plane(origin_x: float):
    origin = ParamVector(("p",), (torch.tensor([origin_x, 0.0, 0.0], dtype=torch.float64),))
    d1 = ParamVector(("p",), (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),))
    d2 = ParamVector(("p",), (torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),))
    return origin, d1, d2


def _off_plane(origin: ParamVector, dist: float) -> ParamVector:
    t = origin.tensors[0].clone()
    t[2] = dist  # orthogonal to the plane: relative residual 1 unless treated as "at the origin"
    return ParamVector(("p",), (t,))


@pytest.mark.parametrize(("origin_x", "dist", "rel"), [
    (1e6, 1e-8, 0.0),  # within 1e-12·‖θ1‖ = 1e-6 of a large θ1: rounding, not a direction
    (1e6, 1e-5, 1.0),  # beyond it: a real (tiny) off-plane step
    (0.5, 1e-12, 0.0),  # ‖θ1‖ < 1: the tolerance is 1e-12 (exactly on it counts as at the origin)
    (0.5, 1.5e-12, 1.0),  # just beyond it
])
def test_relative_residual_tolerance_scales_with_the_origin(origin_x: float, dist: float, rel: float) -> None:
    """Snapshots within 1e-12·max(1, ‖θ1‖) of θ1 have no meaningful relative residual (0/0 in float rounding) and
    report 0; anything farther reports residual / distance. A fixed or inverted tolerance would report 100 %
    off-plane for θ1 itself on a large model, or hide real small steps."""
    origin, d1, d2 = _plane(origin_x)
    p = project_onto_plane([_off_plane(origin, dist)], origin, d1, d2)
    assert p.relative_residual[0] == pytest.approx(rel, abs=1e-6)
    assert p.residual[0] == pytest.approx(dist, rel=1e-6)


# -- directions ------------------------------------------------------------------------------------------------------


def test_every_direction_kind_records_its_policy_and_norm() -> None:
    """A result file must say how 1-D parameters were treated and how long the direction is, for every kind:
    δ1 includes every parameter that changed; a random direction records the policy it used and its norm."""
    theta0 = ParamVector(("w", "b"), (torch.ones(2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)))
    theta1 = theta0 + ParamVector(theta0.names, (torch.full((2, 2), 0.5, dtype=torch.float64),
                                                 torch.tensor([1.0, -1.0], dtype=torch.float64)))
    d = optimization_direction(theta0, theta1)
    assert d.info.one_dim_policy == ONE_DIM_POLICY["optimization"] == "include"
    assert d.info.norm == pytest.approx(d.vector.norm()) and d.info.norm == pytest.approx(3.0 ** 0.5)
    c = cross_task_direction(theta0, theta1, 2.0)
    assert c.info.one_dim_policy == "include" and c.info.norm == pytest.approx(2.0) and c.info.rescaled_to == 2.0
    for one_dim in (None, "copy"):
        r = filter_normalized_direction(theta0, seed=5, one_dim=one_dim)
        assert r.info.norm == pytest.approx(r.vector.norm()) and r.info.norm > 0
        assert r.info.one_dim_policy == (one_dim or ONE_DIM_POLICY["random"]) and r.info.seed == 5


def test_directions_take_the_dtype_of_the_point_they_start_from() -> None:
    """A float64 analysis stays float64 (random directions are drawn in float32 for reproducibility across devices,
    then cast); a partner checkpoint saved in another dtype gives δ2 in θ0's dtype."""
    theta64 = ParamVector(("w", "b"), (torch.ones(3, 2, dtype=torch.float64), torch.ones(3, dtype=torch.float64)))
    for one_dim in ("zero", "copy"):
        r = filter_normalized_direction(theta64, seed=1, one_dim=one_dim)
        assert [t.dtype for t in r.vector.tensors] == [torch.float64, torch.float64]
    theta32 = ParamVector(("w",), (torch.zeros(2, 2),))
    partner64 = ParamVector(("w",), (torch.ones(2, 2, dtype=torch.float64),))
    c = cross_task_direction(theta32, partner64, 1.0)
    assert c.vector.tensors[0].dtype == torch.float32 and c.vector.norm() == pytest.approx(1.0)


def test_pca_centres_the_snapshots_by_default() -> None:
    """Li et al. use sklearn's PCA, which subtracts the mean snapshot: a trajectory that moves along u around a
    point offset from θ_end by m (m ⊥ u, ‖m‖ ≫ spread) has u as its first component, not the offset m."""
    center = ParamVector(("p",), (torch.zeros(3, dtype=torch.float64),))
    u = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    m = torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)
    snaps = [ParamVector(("p",), (m + t * u,)) for t in (-1.0, 0.0, 1.0)]
    first = pca_directions(snaps, center, k=1)[0]
    assert abs(first.vector.cosine(ParamVector(("p",), (u,)))) == pytest.approx(1.0)
    raw = pca_directions(snaps, center, k=1, subtract_mean=False)[0]
    assert abs(raw.vector.cosine(ParamVector(("p",), (m,)))) == pytest.approx(1.0, abs=1e-3)


def test_pca_of_a_trajectory_that_never_moved_gives_zero_directions() -> None:
    """Snapshots all equal to θ_end have no principal directions: zero vectors (norm 0), not a division by zero."""
    center = ParamVector(("p",), (torch.ones(3, dtype=torch.float64),))
    out = pca_directions([center.clone() for _ in range(3)], center, k=2)
    assert len(out) == 2 and all(d.vector.norm() == 0.0 and d.info.norm == 0.0 for d in out)


def test_pca_of_far_snapshots_keeps_the_small_components() -> None:
    """Uncentred trajectory PCA (``subtract_mean=False``) of snapshots 1e4 from θ_end that differ by O(1): the
    Gram entries are ~1e8 and the second component lives in their last digits. It must match a float64 SVD of the
    snapshot matrix; a float32 Gram matrix (7 digits) gives a second direction at cos ≈ 0.16 to the right one."""
    center = ParamVector(("p",), (torch.zeros(3, dtype=torch.float64),))
    rows = torch.tensor([[1e4, 1.0, 0.0], [1e4, 0.0, 3.0], [1e4, -2.0, 1.0]], dtype=torch.float64)
    snaps = [ParamVector(("p",), (r,)) for r in rows]
    _, _, vt = torch.linalg.svd(rows, full_matrices=False)
    out = pca_directions(snaps, center, k=2, subtract_mean=False)
    for j, d in enumerate(out):
        assert abs(float(d.vector.tensors[0] @ vt[j])) == pytest.approx(1.0, abs=1e-9)
        assert d.vector.norm() == pytest.approx(1.0)
