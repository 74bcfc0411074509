"""Length-bucketed training batches (issue 42, ``TrainHyper.length_bucketed``): the data-order oracles of
test_loop_oracles.py for the bucketed order, the mega-batch construction itself, less padding than the random order,
and a new field that leaves every existing config's hash -- and so every run and claims directory -- as it was."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from repro.config import PROFILES, TrainHyper, apply_overrides, get_profile
from repro.data.tokenize import TokenizedSplit, length_grouped_chunks
from repro.storage import config_hash
from repro.training import train
from repro.training.loop import _epoch_generator, epoch_batches, load_data
from tests.training.test_loop_oracles import _cfg as _oracle_cfg
from tests.training.test_loop_oracles import _examples, cut_and_resume

HYPER = TrainHyper(learning_rate=3e-3, epochs=2, batch_size=16, warmup_ratio=0.34, length_bucketed=True)


def _cfg(**kw):  # noqa: ANN003, ANN202
    """The data-order oracles' tiny run (tests/training/test_loop_oracles.py), bucketed."""
    return _oracle_cfg(**{"hyper": HYPER, **kw})


def _toy_split(lengths: list[int], max_length: int = 64) -> TokenizedSplit:
    """Row i's tokens are 1000*i + position + 1, so a batch says which rows it holds."""
    n = len(lengths)
    lens = torch.tensor(lengths, dtype=torch.int64)
    mask = (torch.arange(max_length)[None, :] < lens[:, None]).to(torch.int64)
    ids = (torch.arange(n)[:, None] * 1000 + torch.arange(max_length)[None, :] + 1) * mask
    return TokenizedSplit(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                          labels=torch.arange(n) % 2, lengths=lens, idx=torch.arange(n), task="sst2", split="train",
                          num_labels=2)


def _varied_lengths(n: int, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 65, (n,), generator=g).tolist()


# -- the data-order contract, bucketed ------------------------------------------------------------------------------
def test_each_bucketed_epoch_has_every_example_once_in_an_order_of_seed_and_epoch_only(tiny_glue: Path) -> None:
    cfg = _cfg()
    _, split, _ = load_data(cfg, tiny_glue)
    assert len(split) == 40
    everything = Counter(_examples(split.batches(64)))
    orders = {}
    for seed in (3, 4):
        for e in (0, 1, 2):
            b = epoch_batches(split, cfg.hyper, seed, e)
            sizes = [len(x["labels"]) for x in b]
            assert sorted(sizes) == [8, 16, 16] and len(b) == math.ceil(40 / 16)  # same steps per epoch
            assert Counter(_examples(b)) == everything  # every example exactly once per epoch
            orders[seed, e] = _examples(b)
            assert _examples(epoch_batches(split, cfg.hyper, seed, e)) == orders[seed, e]  # (seed, epoch) only
    assert len({tuple(o) for o in orders.values()}) == len(orders)  # each epoch and each seed its own order
    random = dataclasses.replace(cfg.hyper, length_bucketed=False)
    assert _examples(epoch_batches(split, random, 3, 0)) == _examples(
        split.batches(16, shuffle=True, generator=_epoch_generator(3, 0)))  # off: today's order, unchanged
    assert _examples(epoch_batches(split, random, 3, 0)) != orders[3, 0]


def test_mega_batches_are_the_random_permutation_cut_up_sorted_inside_and_batches_shuffled() -> None:
    """The construction, checked against its definition: the first draw of the generator is the random order's
    permutation; each batch lies inside one mega-batch of mega x batch_size consecutive examples of it, is sorted
    longest first within the mega-batch, and the batches' order is not the sorted one."""
    lengths = _varied_lengths(70)
    lens = torch.tensor(lengths)
    bs, mega = 4, 3  # mega-batches of 12: 6 of them, the last of 10 -> 18 batches, the last of 2
    chunks = length_grouped_chunks(lens, bs, torch.Generator().manual_seed(11), mega)
    perm = torch.randperm(70, generator=torch.Generator().manual_seed(11))
    megas = [set(m.tolist()) for m in torch.split(perm, bs * mega)]
    assert sorted(len(c) for c in chunks) == [2] + [4] * 17
    assert sorted(i for c in chunks for i in c.tolist()) == list(range(70))
    home = []
    for c in chunks:
        owners = [k for k, m in enumerate(megas) if set(c.tolist()) <= m]
        assert len(owners) == 1  # no batch straddles two mega-batches
        home.append(owners[0])
    for k, m in enumerate(megas):
        mine = sorted((c for c, h in zip(chunks, home) if h == k), key=lambda c: -int(lens[c].max()))
        flat = torch.cat(mine)
        assert lens[flat].tolist() == sorted(lens[list(m)].tolist(), reverse=True)  # sorted inside the mega-batch
    assert home != sorted(home)  # the batch order is shuffled across mega-batches
    again = length_grouped_chunks(lens, bs, torch.Generator().manual_seed(11), mega)
    assert all(torch.equal(a, b) for a, b in zip(chunks, again, strict=True))
    with pytest.raises(ValueError, match="batch_size"):
        length_grouped_chunks(lens, 0, torch.Generator())
    with pytest.raises(ValueError, match="mega_batches"):
        length_grouped_chunks(lens, 4, torch.Generator(), 0)


def test_bucketed_batches_carry_less_padding_than_random_ones() -> None:
    split = _toy_split(_varied_lengths(400))
    real = sum(split.lengths.tolist())

    def padded(batches: list[dict[str, torch.Tensor]]) -> int:
        return sum(b["input_ids"].numel() for b in batches)

    for seed in (0, 1):
        gen = _epoch_generator(seed, 0)
        rand = split.batches(8, shuffle=True, generator=gen)
        buck = split.length_grouped_batches(8, generator=_epoch_generator(seed, 0))
        assert sum(int(b["attention_mask"].sum()) for b in buck) == real == sum(
            int(b["attention_mask"].sum()) for b in rand)
        assert padded(buck) < 0.75 * padded(rand), (padded(buck), padded(rand), real)
        assert padded(buck) < 1.1 * real  # 400 examples in one mega-batch of 400: nearly no padding


def test_a_bucketed_run_resumed_mid_epoch_sees_the_same_remaining_batches(tiny_glue: Path, tmp_path: Path) -> None:
    """Killed after step 4 (mid second epoch) and resumed: the per-step losses after the cut equal the
    uninterrupted bucketed run's; and the loop really trains on the bucketed order (its losses are not the random
    order's)."""
    cfg = _cfg()
    ref, again = cut_and_resume(cfg, tiny_glue, tmp_path)
    assert again.metrics.train_loss[4:] == pytest.approx(ref.metrics.train_loss[4:], rel=1e-6)
    assert again.metrics.total_steps == ref.metrics.total_steps == 6
    plain = dataclasses.replace(cfg, hyper=dataclasses.replace(cfg.hyper, length_bucketed=False))
    other = train(plain, tmp_path / "ref", data_dir=tiny_glue, progress=False)
    assert other.path != ref.path  # its own run directory
    assert other.metrics.train_loss[0] != pytest.approx(ref.metrics.train_loss[0], rel=1e-6)


# -- the field and the config hash ---------------------------------------------------------------------------------
# config_hash(profile, 8), config_hash of the last setting's sst2/pretrained/seed 0 config and of the extended
# sst2/scratch/seed 1 config, recorded before the field existed: adding it must not rename any directory
HASHES_BEFORE_THE_FIELD = {
    "smoke": ("0697b992", "2f31f59e3f78", "5e0476172cec"),
    "cpu-2026-11": ("b3c74027", "36f4c99fc379", "640b69caa0a7"),  # registered as "cpu" until 2026-12-07
    "standard": ("6f6f796a", "cb02b518dbbb", "99c46f21a746"),
    "paper": ("b229f405", "967c5bfe6415", "f2b6bd71bcbc"),
}


# Profiles that turned bucketing on, each a registered recipe change (claims/REGISTRATION_V3.md, "Profiles sized
# from the CPU rate pilot", issue 43, before any run of them); the others keep the default.
BUCKETED = {"standard", "workstation", "cpu"}


@pytest.mark.parametrize("name", ["smoke", "cpu-2026-11"])
def test_the_field_is_off_and_changes_no_hash_at_its_default(name: str) -> None:
    p = get_profile(name)
    assert not p.pretrained.length_bucketed and not p.scratch.length_bucketed
    got = (config_hash(p, 8), config_hash(p.train_config("sst2", "pretrained", 0, p.settings[-1])),
           config_hash(p.train_config("sst2", "scratch", 1, overfit=True)))
    if name == "cpu-2026-11":  # renamed from "cpu" (its name and description are in the profile's hash, not the runs')
        got = (HASHES_BEFORE_THE_FIELD[name][0], *got[1:])
    assert got == HASHES_BEFORE_THE_FIELD[name]
    assert "length_bucketed" not in p.to_json()["pretrained"]


def test_the_paper_profile_trains_as_before_and_only_its_grids_changed() -> None:
    """paper keeps unbucketed batches: its training configs hash as before the field; the profile's own hash
    changed with float32 grids on CUDA (cuda_grid_bf16, issue 43) only."""
    p = get_profile("paper")
    assert not p.pretrained.length_bucketed and not p.scratch.length_bucketed
    before = HASHES_BEFORE_THE_FIELD["paper"]
    assert (config_hash(p.train_config("sst2", "pretrained", 0, p.settings[-1])),
            config_hash(p.train_config("sst2", "scratch", 1, overfit=True))) == before[1:]
    old = dataclasses.replace(p, landscape=dataclasses.replace(p.landscape, cuda_grid_bf16=True))
    assert config_hash(old, 8) == before[0] != config_hash(p, 8)


@pytest.mark.parametrize("name", sorted(BUCKETED))
def test_the_registered_profiles_bucket_both_arms(name: str) -> None:
    p = get_profile(name)
    assert p.pretrained.length_bucketed and p.scratch.length_bucketed
    assert p.to_json()["scratch"]["length_bucketed"] is True


def test_the_field_when_on_is_in_the_json_and_the_hash_and_can_be_set() -> None:
    cfg = get_profile("cpu-2026-11").train_config("sst2", "pretrained", 0)
    on = dataclasses.replace(cfg, hyper=dataclasses.replace(cfg.hyper, length_bucketed=True))
    assert on.to_json()["hyper"]["length_bucketed"] is True
    assert config_hash(on) != config_hash(cfg)
    assert type(cfg).from_json(on.to_json()) == on and type(cfg).from_json(cfg.to_json()) == cfg
    prof = apply_overrides(get_profile("cpu-2026-11"), {"scratch.length_bucketed": "true"})
    assert prof.scratch.length_bucketed is True and prof.pretrained.length_bucketed is False
    assert config_hash(prof, 8) != HASHES_BEFORE_THE_FIELD["cpu-2026-11"][0]
    assert {n for n, p in PROFILES.items() if p.pretrained.length_bucketed or p.scratch.length_bucketed} == BUCKETED


def test_the_bucketing_effect_script_writes_both_orders_of_both_arms(tiny_glue: Path, tmp_path: Path) -> None:
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[2] / "scripts" / "bucketing_effect.py"
    spec = importlib.util.spec_from_file_location("bucketing_effect", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "effect.json"
    assert mod.main(["--profile", "smoke", "--set", "model=tiny-random", "--set", "train_size=40", "--set",
                     "dev_size=16", "--set", "pretrained.epochs=1", "--set", "scratch.epochs=1", "--data-dir",
                     str(tiny_glue), "--device", "cpu", "--out", str(tmp_path / "runs"), "--json", str(out),
                     "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert (res["profile"], res["task"], res["seed"]) == ("smoke", "sst2", 0)
    for init in ("pretrained", "scratch"):
        arm = res["arms"][init]
        for order in ("random", "bucketed"):
            r = arm[order]
            assert len(r["train_loss"]) == r["steps"] == 3 and r["status"] == "complete"
            assert r["final_dev_accuracy"] == r["dev"][-1]["dev_accuracy"] and r["wall_seconds"] > 0
            assert r["epoch0"]["real_tokens"] == arm["random"]["epoch0"]["real_tokens"]
        assert arm["random"]["run_dir"] != arm["bucketed"]["run_dir"]
        assert arm["bucketed"]["epoch0"]["padded_tokens"] <= arm["random"]["epoch0"]["padded_tokens"]
        assert set(arm["bucketed_minus_random"]) == {"final_train_loss_last_epoch_mean", "final_dev_accuracy",
                                                     "wall_seconds"}
