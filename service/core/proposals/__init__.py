"""What to try next: the grid of a spec, Optuna's samplers, and edge refinement."""
