"""A claims plan small enough for end-to-end tests of its execution (failures, workers, shards) on the CPU: the
smoke profile on ``tiny-random`` with a few steps and the smallest grids. It says nothing about the science."""

from __future__ import annotations

import dataclasses

from repro.config import LandscapeSettings, Profile, TrainHyper, get_profile


def tiny_profile() -> Profile:
    smoke = get_profile("smoke")
    return dataclasses.replace(
        smoke, model="tiny-random", train_size=32, dev_size=16,
        pretrained=TrainHyper(learning_rate=5e-4, epochs=1, batch_size=16),
        scratch=TrainHyper(learning_rate=5e-4, epochs=1, batch_size=16),
        overfit_epoch_factor=2.0, snapshots=2,
        landscape=LandscapeSettings(
            curve_points=3, surface_points=3, random_width_points=3, random_directions=1, eval_train_size=16,
            eval_dev_size=16, eval_batch_size=16, hessian_top_k=1, hessian_max_iter=3, trace_samples=2,
            hessian_batch_size=16, hessian_examples=16, layer_surface_points=3,
        ),
    )


def _flat(d: object, prefix: str = "") -> dict[str, object]:
    if isinstance(d, dict):
        out: dict[str, object] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def tiny_profile_overrides() -> list[str]:
    """``--set KEY=VALUE`` arguments that turn the smoke profile into :func:`tiny_profile` on the command line
    (for tests that run ``repro claims`` as a process, e.g. through scripts/device_run.sh)."""
    import json

    smoke, tiny = _flat(get_profile("smoke").to_json()), _flat(tiny_profile().to_json())
    return [f"--set {k}={json.dumps(v)}" for k, v in sorted(tiny.items()) if smoke.get(k) != v]
