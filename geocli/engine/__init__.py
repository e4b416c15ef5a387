"""Train, evaluate and predict loops, checkpoints, caches."""
