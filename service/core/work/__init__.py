"""The work queue on top of Optuna's trials: claim, heartbeat and record, finish, reap.

Ownership rule: a worker owns a configuration while ``configs.trial_id`` is
its trial and the configuration is ``running``. Every write a worker makes
starts with a guarded UPDATE of that row (which also takes the row's write
lock), so a worker presumed dead whose trial was failed and re-enqueued finds
its guard empty and its late result is dropped, never merged with the retry.
Each trial changes state in Optuna's table by compare-and-set
(``repo.optuna_trials.cas_state``), so a configuration is trained and
finished exactly once per attempt.

The modules here decide; the statements are in ``service.core.repo``.
"""
