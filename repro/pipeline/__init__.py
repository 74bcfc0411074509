"""Running a plan: the machinery between a profile and ``claims.json``, none of the science.

* :mod:`repro.pipeline.jobs` -- the plan as independent training and analysis jobs with expected costs, dealt
  deterministically to workers or shards;
* :mod:`repro.pipeline.plan` -- executing this process's share, failure isolation, assembling the evidence;
* :mod:`repro.pipeline.distributed` -- several processes through torch elastic (torchrun, gloo);
  :mod:`repro.pipeline.launcher` -- ``repro claims --workers N``, starting them on this machine;
* :mod:`repro.pipeline.progress` -- a cost-weighted progress display;
* :mod:`repro.pipeline.shards` -- small mergeable shard outputs for machines without a shared filesystem;
* :mod:`repro.pipeline.shardplan` -- a cost-balanced split into shards that fit a GPU window, frozen in a plan
  file; :mod:`repro.pipeline.timings` -- the recorded GPU timings that size it; :mod:`repro.pipeline.revision` --
  the science revision a merge checks;
* :mod:`repro.pipeline.runner` -- ``repro claims``: run, evaluate every registered claim, write claims.json and the
  report; merge shards.

What a scientist edits (the claims, their measures and thresholds) is in :mod:`claims`; what every layer reads back
(the claims.json records) is in :mod:`repro.results`. Neither imports this package.
"""
