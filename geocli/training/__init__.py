"""Training: the trainer, its data and label spaces, optimiser and loss, scoring, run folders,
distributed launch and recipes."""
