"""What the training loop writes down: evaluation cadence, snapshots, checkpoints, divergence records, the data each
run sees, and the small helpers around them -- each against its documented contract, not against another run.

Every θ1, every trajectory and every §5.2/§5.3 curve downstream is read from these records: a dev evaluation one
step late, a snapshot of the wrong step, or a checkpoint that restores a different step would shift every figure
while a run still trains and resumes. The mutation pass over ``repro/training`` (tests/MUTATION.md) found these
records tested only end to end; these tests name the contract and fail when it is broken.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from repro.config import TrainHyper, get_profile
from repro.data import get_task, prepare_split
from repro.errors import TrainingDivergedError
from repro.landscape.evaluate import evaluate
from repro.models import load_model, load_tokenizer
from repro.training import run_dir_for, train
from repro.training.loop import (
    TrainingInterrupted,
    _eval_steps,
    _lr_lambda,
    _param_groups,
    _progress,
    _StopRequest,
    load_data,
    read_metrics,
)
from repro.training.snapshots import (
    load_delta_snapshot,
    load_params,
    model_params,
    save_delta_snapshot,
    snapshot_steps,
)
from tests.conftest import nan_loss_from
from tests.training.test_loop_oracles import _examples as _batch_examples

# 40 examples in batches of 16: 3 steps per epoch, 6 in all
HYPER = TrainHyper(learning_rate=3e-3, epochs=2, batch_size=16, warmup_ratio=0.0)


def _cfg(**kw):  # noqa: ANN003, ANN202
    cfg = get_profile("smoke").train_config("sst2", kw.pop("init", "scratch"), kw.pop("seed", 3))
    base = dict(model="tiny-random", train_size=40, dev_size=16, hyper=HYPER, checkpoint_every=100, snapshots=3)
    base.update(kw)
    return dataclasses.replace(cfg, **base)


def _examples(split) -> list[tuple[tuple[int, ...], int]]:  # noqa: ANN001
    return _batch_examples(split.batches(64))


def _checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def _model_at(cfg, params: dict[str, torch.Tensor]) -> nn.Module:  # noqa: ANN001
    model = load_model(cfg.model, cfg.init, 2, cfg.seed, attn_implementation="eager")
    missing, unexpected = model.load_state_dict(params, strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing)
    return model


# -- evaluation cadence -------------------------------------------------------------------------------------------
def test_eval_steps_are_the_epoch_fractions_rounded_and_step_zero() -> None:
    assert _eval_steps(3, 2, 2) == {0, 2, 3, 5, 6}  # round(1.5) = 2 within each epoch, then each epoch end
    assert _eval_steps(4, 2, 1) == {0, 4, 8}
    assert _eval_steps(5, 1, 3) == {0, 2, 3, 5}
    assert _eval_steps(7, 3, 1) == {0, 7, 14, 21}


def test_dev_evaluations_at_the_stated_steps_with_the_mean_training_loss_since_the_last(
        tiny_glue: Path, tmp_path: Path) -> None:
    """Two evaluations per epoch of 3 steps: records at steps 0, 2, 3, 5, 6; each record's epoch is step / 3, its
    training loss the mean of the per-step losses since the previous record, and its dev numbers those of the
    landscape's evaluator at θ0 (first record) and θ1 (last record)."""
    cfg = _cfg(evals_per_epoch=2)
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    m = run.metrics
    assert [e.step for e in m.evals] == [0, 2, 3, 5, 6]
    assert [e.epoch for e in m.evals] == pytest.approx([0, 2 / 3, 1, 5 / 3, 2])
    tl = m.train_loss
    assert m.evals[0].train_loss_epoch is None
    expected = [sum(tl[0:2]) / 2, tl[2], sum(tl[3:5]) / 2, tl[5]]
    assert [e.train_loss_epoch for e in m.evals[1:]] == pytest.approx(expected, rel=1e-12)
    _, _, dev = load_data(cfg, tiny_glue)
    batches = dev.batches(128, sort_by_length=True)
    for rec, params in ((m.evals[0], run.theta0()), (m.evals[-1], run.theta1())):
        point = evaluate(_model_at(cfg, params), batches)
        assert rec.dev_loss == pytest.approx(point.loss, rel=1e-5)
        assert rec.dev_accuracy == pytest.approx(point.accuracy)
    # it did train, by more than the tolerance above: θ0's record cannot pass for θ1's
    assert abs(m.evals[0].dev_loss - m.evals[-1].dev_loss) > 1e-5 * 10 * m.evals[0].dev_loss


# -- snapshots ----------------------------------------------------------------------------------------------------
def test_snapshot_steps_are_evenly_spaced_with_both_ends() -> None:
    assert snapshot_steps(0, 5) == [0] and snapshot_steps(-2, 5) == [0]
    assert snapshot_steps(1, 5) == [0, 1]  # a one-step run: both ends, nothing between
    assert snapshot_steps(10, 1) == [0, 10] and snapshot_steps(10, 2) == [0, 10]
    assert snapshot_steps(10, 3) == [0, 5, 10]
    assert snapshot_steps(10, 4) == [0, 3, 7, 10]
    assert snapshot_steps(3, 8) == [0, 1, 2, 3]  # more snapshots than steps: every step once


def test_a_snapshot_holds_the_parameters_after_its_step(tiny_glue: Path, tmp_path: Path) -> None:
    """Snapshots at steps 2 and 4 of 6; the run is stopped after step 4, where a periodic checkpoint holds the
    model's exact state: the float16 snapshot of step 4 is that state to float16 precision, and far from step 2's."""
    cfg = _cfg(snapshots=4, checkpoint_every=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False, _stop_after_step=4)
    rd = run_dir_for(tmp_path, cfg)
    files = sorted(p.name for p in (rd / "snapshots").iterdir())
    assert files == ["step_0000002.safetensors", "step_0000004.safetensors"]  # θ0 and θ1 are never snapshots
    ck = _checkpoint(rd)
    assert ck["step"] == 4
    theta0 = load_params(rd / "theta0.safetensors")
    snap4 = load_delta_snapshot(rd / "snapshots" / "step_0000004.safetensors", theta0)
    snap2 = load_delta_snapshot(rd / "snapshots" / "step_0000002.safetensors", theta0)

    def dist(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return sum(float((a[k] - b[k]).double().norm() ** 2) for k in a) ** 0.5

    exact = {k: ck["model"][k].float() for k in theta0}
    moved = dist(exact, theta0)
    assert moved > 0
    assert dist(snap4, exact) < 1e-2 * moved
    assert dist(snap2, exact) > 0.1 * moved


def test_delta_snapshots_store_theta_minus_theta0_in_float16(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    theta0 = {"w": torch.randn(4, 3, generator=gen), "b": torch.randn(3, generator=gen)}
    params = {k: v + 1e-3 * torch.randn(v.shape, generator=gen) for k, v in theta0.items()}
    path = tmp_path / "s.safetensors"
    save_delta_snapshot(path, params, theta0)
    raw = load_file(str(path))
    assert {k: t.dtype for k, t in raw.items()} == {"w": torch.float16, "b": torch.float16}
    for k in theta0:
        torch.testing.assert_close(raw[k], (params[k] - theta0[k]).half())
    back = load_delta_snapshot(path, theta0)
    for k in theta0:
        torch.testing.assert_close(back[k], params[k], rtol=0, atol=1e-5)


def test_model_params_are_detached_contiguous_float32_copies() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.arange(12.0, dtype=torch.float64).reshape(3, 4).t())  # not contiguous
            self.b = nn.Parameter(torch.ones(2))

    m = M()
    p = model_params(m)
    assert list(p) == ["a", "b"]
    assert p["a"].dtype == torch.float32 and p["a"].is_contiguous() and not p["a"].requires_grad
    torch.testing.assert_close(p["a"], m.a.detach().float())
    with torch.no_grad():
        m.b.add_(1.0)
    assert torch.equal(p["b"], torch.ones(2))  # a copy, not a view of the live parameter


# -- checkpoints --------------------------------------------------------------------------------------------------
def test_periodic_checkpoints_every_k_steps_and_never_at_the_last(tiny_glue: Path, tmp_path: Path) -> None:
    cfg = _cfg(checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "a", data_dir=tiny_glue, progress=False, _stop_after_step=3)
    ck = _checkpoint(run_dir_for(tmp_path / "a", cfg))
    assert ck["step"] == 2  # step 3 is not a multiple of 2: the last checkpoint is step 2's
    state = json.loads(ck["state_json"])
    assert len(state["train_loss"]) == len(state["learning_rate"]) == len(state["grad_norm"]) == 2
    assert [e["step"] for e in state["evals"]] == [0]
    assert state["wall"] > 0

    cfg3 = _cfg(checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):  # stopped after the last step, before θ1 and the metrics are written
        train(cfg3, tmp_path / "b", data_dir=tiny_glue, progress=False, _stop_after_step=6)
    assert _checkpoint(run_dir_for(tmp_path / "b", cfg3))["step"] == 3  # 6 is a multiple of 3 but the last step


def test_time_based_checkpoints_follow_checkpoint_seconds(tiny_glue: Path, tmp_path: Path) -> None:
    cfg = _cfg()  # checkpoint_every=100: no periodic checkpoint in 6 steps
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "now", data_dir=tiny_glue, progress=False, checkpoint_seconds=0, _stop_after_step=1)
    assert _checkpoint(run_dir_for(tmp_path / "now", cfg))["step"] == 1
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "never", data_dir=tiny_glue, progress=False, checkpoint_seconds=1e9,
              _stop_after_step=5)
    assert not (run_dir_for(tmp_path / "never", cfg) / "checkpoint.pt").exists()


# -- finished and diverged runs -----------------------------------------------------------------------------------
def test_a_finished_run_records_its_sizes_and_reads_back(tiny_glue: Path, tmp_path: Path) -> None:
    cfg = _cfg()
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    m = run.metrics
    assert (m.status, m.total_steps, m.steps_per_epoch) == ("complete", 6, 3)
    assert (m.num_train, m.num_dev, m.num_labels) == (40, 16, 2)
    assert m.snapshot_steps == [0, 3, 6] and m.wall_seconds > 0 and m.message == ""
    assert len(m.train_loss) == len(m.learning_rate) == len(m.grad_norm) == 6
    assert read_metrics(run.path) == m
    assert not (run.path / "checkpoint.pt").exists()


def test_a_diverged_run_records_what_happened_up_to_the_bad_step(tiny_glue: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Loss NaN at step 4 of 6, a snapshot step: the record keeps steps 1-3 and the NaN, the snapshots before it
    (not step 4's, never written), the evaluations made, the sizes; the saved parameters are those after step 3 (no
    update from the NaN step), equal to a clean run's checkpoint at step 3; the message names the step, the run and
    the setting to change."""
    clean = _cfg(checkpoint_every=3, snapshots=4)
    with pytest.raises(KeyboardInterrupt):
        train(clean, tmp_path / "clean", data_dir=tiny_glue, progress=False, _stop_after_step=3)
    at3 = _checkpoint(run_dir_for(tmp_path / "clean", clean))["model"]

    nan_loss_from(monkeypatch, 4)
    cfg = _cfg(snapshots=4)
    with pytest.raises(TrainingDivergedError) as err:
        train(cfg, tmp_path / "bad", data_dir=tiny_glue, progress=False)
    rd = run_dir_for(tmp_path / "bad", cfg)
    m = read_metrics(rd)
    assert m.status == "diverged" and m.message == str(err.value)
    assert (m.total_steps, m.steps_per_epoch, m.num_train, m.num_dev, m.num_labels) == (6, 3, 40, 16, 2)
    assert len(m.train_loss) == 4 and all(x == x for x in m.train_loss[:3]) and m.train_loss[3] != m.train_loss[3]
    assert len(m.learning_rate) == len(m.grad_norm) == 3
    assert m.snapshot_steps == [0, 2]  # snapshot_steps(6, 4) = [0, 2, 4, 6], those before step 4
    assert [e.step for e in m.evals] == [0, 3]
    assert m.message == (
        f"training loss became nan at step 4 (sst2, scratch, seed 3, learning rate {HYPER.learning_rate}). The "
        f"parameters at that step are in {rd / 'diverged.safetensors'}. Lower the learning rate (e.g. `--set "
        "scratch.learning_rate=5e-5`) or the gradient-clipping norm.")
    assert m.wall_seconds >= 0 and m.train_loss[:3] == read_metrics(rd).train_loss[:3]
    bad = load_params(rd / "diverged.safetensors")
    assert bad.keys() <= at3.keys()
    assert all(torch.equal(bad[k], at3[k].float()) for k in bad)
    assert not (rd / "theta1.safetensors").exists() and not (rd / "checkpoint.pt").exists()


# -- data ---------------------------------------------------------------------------------------------------------
def test_train_and_dev_subsets_are_drawn_with_the_data_seed_and_the_next_one(tiny_glue: Path) -> None:
    """The run's subsets: train with ``data_seed``, dev with ``data_seed + 1`` (so the two never share a draw),
    at the configured sizes and maximum length."""
    cfg = _cfg(data_seed=5, train_size=20, dev_size=8, max_length=12)
    task, train_split, dev_split = load_data(cfg, tiny_glue)
    assert task.name == "sst2" and (len(train_split), len(dev_split)) == (20, 8)
    tok = load_tokenizer(cfg.model)
    spec = get_task("sst2")

    def split(name: str, n: int, seed: int):  # noqa: ANN202
        return prepare_split(spec, name, tok, tokenizer_id=cfg.model, max_length=12, subset_size=n,
                             subset_seed=seed, data_dir=tiny_glue)

    assert _examples(train_split) == _examples(split(spec.train_split, 20, 5))
    assert _examples(dev_split) == _examples(split(spec.dev_split, 8, 6))
    assert _examples(dev_split) != _examples(split(spec.dev_split, 8, 5))
    assert _examples(train_split) != _examples(split(spec.train_split, 20, 6))
    assert max(len(ids) for ids, _ in _examples(train_split)) <= 12


# -- schedule and decay set: the edges ----------------------------------------------------------------------------
def test_schedule_edges() -> None:
    assert _lr_lambda(5, 4)(4) == pytest.approx(1.0)  # one decay step: (5 − 4) / 1, not halved
    assert _lr_lambda(4, 4)(4) == 0.0
    assert _lr_lambda(10, 2)(11) == 0.0 and _lr_lambda(10, 2)(10) == 0.0  # never negative past the end
    assert _lr_lambda(10, 0)(0) == 1.0
    assert _lr_lambda(10, 1)(0) == 1.0  # a one-step warm-up reaches the full rate at once: (0 + 1) / 1
    assert _lr_lambda(10, 1)(1) == pytest.approx(1.0)  # then decay starts from (10 − 1) / (10 − 1)


def test_no_decay_by_parameter_name_suffix_and_layer_norm_spellings() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(2, 2)
            self.layer_norm = nn.LayerNorm(2)  # the spelling of most non-BERT Hugging Face encoders
            self.LayerNorm = nn.LayerNorm(2)
            self.bias_table = nn.Parameter(torch.zeros(2))  # "bias" not at the end: a weight like any other

    m = M()
    decay, no_decay = _param_groups(m, 0.01)
    names = {id(p): n for n, p in m.named_parameters()}
    assert sorted(names[id(p)] for p in decay["params"]) == ["bias_table", "dense.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "LayerNorm.bias", "LayerNorm.weight", "dense.bias", "layer_norm.bias", "layer_norm.weight"]
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)


# -- signals and the interruption record --------------------------------------------------------------------------
def test_stop_request_records_the_first_signal_raises_on_the_second_and_restores_handlers() -> None:
    def mine(signum: int, frame: object) -> None:  # noqa: ARG001
        raise AssertionError("the caller's handler ran while training was active")

    old = {s: signal.signal(s, mine) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _StopRequest() as stop:
            assert stop.name == "" and stop.signum is None
            assert signal.getsignal(signal.SIGINT) == stop._handle == signal.getsignal(signal.SIGTERM)
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # a real signal: recorded, nothing raised
            except KeyboardInterrupt:  # caught, so a broken handler fails this test instead of stopping pytest
                pytest.fail("the first signal raised KeyboardInterrupt instead of being recorded")
            assert stop.signum == signal.SIGTERM and stop.name == "SIGTERM"
            with pytest.raises(KeyboardInterrupt, match="second SIGINT: stopped without saving"):
                stop._handle(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
        assert stop._old == {}
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_stop_request_off_the_main_thread_leaves_the_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen = {}

    def body() -> None:
        with _StopRequest() as stop:
            seen["inside"] = signal.getsignal(signal.SIGINT)
            seen["old"] = dict(stop._old)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == {"inside": before, "old": {}} and signal.getsignal(signal.SIGINT) == before


def test_training_interrupted_carries_what_was_saved() -> None:
    e = TrainingInterrupted("saved step 4", signum=signal.SIGTERM, step=4, total=6, run_dir=Path("/r"))
    assert isinstance(e, KeyboardInterrupt) and str(e) == "saved step 4" == e.message
    assert (e.signum, e.step, e.total, e.run_dir) == (signal.SIGTERM, 4, 6, Path("/r"))


# -- progress -----------------------------------------------------------------------------------------------------
def test_progress_bar_names_the_run_and_is_silent_when_off(tiny_glue: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg()
    train(cfg, tmp_path / "quiet", data_dir=tiny_glue, progress=False)
    assert capsys.readouterr().err == ""
    train(cfg, tmp_path / "loud", data_dir=tiny_glue, progress=True)
    err = capsys.readouterr().err
    assert "sst2/scratch/seed3" in err and "/6" in err and "loss=" in err


def test_a_resumed_bar_starts_at_the_saved_step_and_leaves_no_trace() -> None:
    bar = _progress(10, 4, "sst2/scratch/seed3", True)
    try:
        assert (bar.total, bar.n, bar.desc) == (10, 4, "sst2/scratch/seed3")
        assert bar.leave is False and callable(bar.dynamic_ncols) and bar.disable is False  # tqdm: True -> a resizer
    finally:
        bar.close()
    off = _progress(10, 0, "x", False)
    assert off.disable is True
    off.close()


def test_train_by_default_shows_progress_uses_the_given_device_and_tokenization_cache(
        tiny_glue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The defaults a user gets from ``train(cfg, out)``: a progress bar on stderr; ``device=`` honoured;
    tokenized splits written to ``cache_dir`` (so a second run does not tokenize again)."""
    cfg = _cfg(train_size=16, dev_size=8, hyper=dataclasses.replace(HYPER, epochs=1))
    run = train(cfg, tmp_path / "out", data_dir=tiny_glue, device="cpu", cache_dir=tmp_path / "tok")
    assert run.metrics.status == "complete" and run.metrics.total_steps == 1
    assert "sst2/scratch/seed3" in capsys.readouterr().err
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "tok").glob("*.safetensors")) == ["sst2", "sst2"]
    keys = [json.loads(p.read_text())["key"] for p in sorted((tmp_path / "tok").glob("*.json"))]
    assert sorted((k["split"], k["tokenizer_id"], k["max_length"], k["subset_size"]) for k in keys) == sorted(
        [("train", cfg.model, cfg.max_length, 16), ("validation", cfg.model, cfg.max_length, 8)])
    assert json.loads((run.path / "config.json").read_text())["provenance"]["device"].startswith("cpu")


def test_stop_request_restores_the_default_handler_where_python_had_none() -> None:
    """``signal.signal`` returns ``None`` for a handler not installed from Python; restoring ``None`` is an error,
    so the default handler takes its place."""
    saved = signal.getsignal(signal.SIGTERM)
    try:
        stop = _StopRequest()
        stop._old = {signal.SIGTERM: None}
        stop.__exit__(None, None, None)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and stop._old == {}
    finally:
        signal.signal(signal.SIGTERM, saved)


# -- wall time, checkpoint timing, snapshot files -----------------------------------------------------------------
class _Clock:
    """A ``time`` stand-in whose ``perf_counter`` advances by one second per call."""

    def __init__(self) -> None:
        self.t = 0.0

    def perf_counter(self) -> float:
        self.t += 1.0
        return self.t


def _count_checkpoints(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import repro.storage as storage

    real, steps = storage.atomic_save, []

    def spy(path, write):  # noqa: ANN001, ANN202
        if Path(path).name == "checkpoint.pt":
            steps.append(len(steps) + 1)
        return real(path, write)

    monkeypatch.setattr(storage, "atomic_save", spy)
    return steps


@pytest.mark.parametrize(("every", "seconds", "checkpoints"), [(2, 1e9, 2), (100, 1.0, 5), (100, 2.0, 2)])
def test_wall_time_sums_the_training_segments_between_checkpoints(
        every: int, seconds: float, checkpoints: int, tiny_glue: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a clock that ticks once per reading, the loop reads it once at the start, once per step, once after
    each checkpoint and once at the end: 6 steps and c checkpoints give 6 + c + 2 ticks, of which the c after a
    checkpoint are not training, so wall = 7 (the checkpoint writes are excluded, every segment is added, none
    is counted twice or from zero). A checkpoint is due once ``seconds`` have passed (``>=``): 1 s is every step but
    the last; 2 s every other step from step 2 (steps 2 and 4... then 6 is the last)."""
    from repro.training import loop

    monkeypatch.setattr(loop, "time", _Clock())
    made = _count_checkpoints(monkeypatch)
    run = train(_cfg(checkpoint_every=every), tmp_path, data_dir=tiny_glue, progress=False,
                checkpoint_seconds=seconds)
    assert len(made) == checkpoints
    assert run.metrics.wall_seconds == 7.0


def test_only_the_intermediate_snapshots_are_written_as_files(tiny_glue: Path, tmp_path: Path) -> None:
    """θ0 and θ1 are stored in full precision; the snapshot folder holds exactly the steps strictly between."""
    run = train(_cfg(snapshots=7), tmp_path, data_dir=tiny_glue, progress=False)
    assert run.metrics.snapshot_steps == [0, 1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (run.path / "snapshots").iterdir()) == [
        f"step_{s:07d}.safetensors" for s in (1, 2, 3, 4, 5)]


# -- signals in the loop, the progress bar's counts ---------------------------------------------------------------
def _signal_at(monkeypatch: pytest.MonkeyPatch, call: int, sig: int = signal.SIGTERM) -> None:
    """Deliver ``sig`` to this process during the ``call``-th training forward pass."""
    from types import SimpleNamespace

    from repro.training import loop

    real, calls = torch.nn.functional, {"n": 0}

    def cross_entropy(logits, labels, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == call:
                os.kill(os.getpid(), sig)
        return real.cross_entropy(logits, labels, *a, **k)

    monkeypatch.setattr(loop, "F", SimpleNamespace(cross_entropy=cross_entropy))


def _interrupted(tiny_glue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: int, sig: int
                 ) -> tuple[TrainingInterrupted, Path]:
    """Train the 6-step config with ``sig`` sent at the ``call``-th loss: the interruption and the run's folder."""
    _signal_at(monkeypatch, call, sig)
    cfg = _cfg()
    with pytest.raises(TrainingInterrupted) as err:
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    return err.value, run_dir_for(tmp_path, cfg)


def test_a_signal_mid_run_raises_with_the_saved_step(tiny_glue: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    e, rd = _interrupted(tiny_glue, tmp_path, monkeypatch, 4, signal.SIGTERM)
    assert (e.signum, e.step, e.total, e.run_dir) == (signal.SIGTERM, 4, 6, rd)
    assert str(e) == (f"interrupted by SIGTERM: saved a checkpoint at step 4 of 6 of sst2/scratch/seed 3 in {rd}; "
                      "rerun the same command to resume from it")
    assert int(_checkpoint(rd)["step"]) == 4 and not (rd / "metrics.json").exists()


def test_a_signal_in_the_last_step_finishes_the_run_then_says_so(tiny_glue: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The last step needs no checkpoint: the run is finished and saved (θ1, metrics) before the interruption is
    reported, and the report says the run is complete."""
    e, rd = _interrupted(tiny_glue, tmp_path, monkeypatch, 6, signal.SIGINT)
    assert (e.signum, e.step, e.total, e.run_dir) == (signal.SIGINT, 6, 6, rd)
    assert str(e) == (f"interrupted by SIGINT after the last step: the run is complete and saved in {rd}; rerun the "
                      "same command to continue")
    assert read_metrics(rd).status == "complete" and (rd / "theta1.safetensors").exists()
    assert not (rd / "checkpoint.pt").exists()


def test_the_bar_advances_one_per_step_from_the_resumed_step_with_the_loss(
        tiny_glue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.training import loop

    bars: list[_RecordingBar] = []

    def make(total: int, initial: int, desc: str, enabled: bool) -> _RecordingBar:
        bars.append(_RecordingBar(total, initial, desc, enabled))
        return bars[-1]

    monkeypatch.setattr(loop, "_progress", make)
    cfg = _cfg(checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False, _stop_after_step=2)
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    first, resumed = bars
    assert (first.total, first.initial, first.desc, first.enabled) == (6, 0, "sst2/scratch/seed3", False)
    assert (resumed.total, resumed.initial) == (6, 2) and first.closed and resumed.closed
    assert first.updates == [1, 1] and resumed.updates == [1, 1, 1, 1]
    assert resumed.postfix == [f"{x:.4f}" for x in run.metrics.train_loss[2:]]


class _RecordingBar:
    def __init__(self, total: int, initial: int, desc: str, enabled: bool) -> None:
        self.total, self.initial, self.desc, self.enabled = total, initial, desc, enabled
        self.updates: list[int] = []
        self.postfix: list[str] = []
        self.closed = False

    def update(self, n: int) -> None:
        self.updates.append(n)

    def set_postfix(self, *, loss: str) -> None:
        self.postfix.append(loss)

    def close(self) -> None:
        self.closed = True


# -- a checkpoint is data -----------------------------------------------------------------------------------------
class _Planted:
    """Pickles to a call that creates a file: loading it with ``weights_only=False`` would run that call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("content", ["planted", "truncated"])
def test_a_checkpoint_that_is_not_plain_tensors_is_refused_with_the_file_to_delete(
        content: str, tiny_glue: Path, tmp_path: Path) -> None:
    from repro.errors import CheckpointError

    cfg = _cfg()
    rd = run_dir_for(tmp_path, cfg)
    rd.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    if content == "planted":
        torch.save({"model": {}, "step": 2, "x": _Planted(marker)}, rd / "checkpoint.pt")
    else:
        (rd / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.raises(CheckpointError) as err:
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    cause = type(err.value.__cause__).__name__
    assert cause == {"planted": "UnpicklingError", "truncated": "RuntimeError"}[content]
    assert str(err.value) == (f"cannot resume from {rd / 'checkpoint.pt'} ({cause}): the file is damaged or was not "
                              "written by repro; delete it to restart this run from step 0 (nothing else in the run "
                              "directory is lost)")
    assert not marker.exists() and (rd / "checkpoint.pt").exists()
