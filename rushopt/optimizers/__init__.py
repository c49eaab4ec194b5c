"""Search spaces and optimizers (random search, Bayesian optimization)."""
