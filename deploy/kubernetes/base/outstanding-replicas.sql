-- KEDA's postgresql trigger: replicas (one run = one configuration x one seed)
-- still to train on active sweeps. Waiting and running configurations count, so
-- workers in the middle of a pack are not scaled away; a sampler sweep adds the
-- trials it has not asked Optuna for yet. Each ScaledObject divides this by its
-- workers' pack size (targetQueryValue = SWEEPS_PACK_MAX_REPLICAS): one worker
-- per pack of outstanding work, zero when nothing is left.
-- The same text is the `query` of both ScaledObjects (tests/deploy checks it).
SELECT
  COALESCE((SELECT SUM(s.n_seeds) FROM configs c JOIN sweeps s ON s.id = c.sweep_id
            WHERE s.state IN ('queued', 'running') AND c.state IN ('waiting', 'running')), 0)
  + COALESCE((SELECT SUM((s.n_configs - s.trials_asked) * s.n_seeds) FROM sweeps s
              WHERE s.state IN ('queued', 'running') AND s.sampler <> 'grid'
                AND s.trials_asked < s.n_configs), 0)
