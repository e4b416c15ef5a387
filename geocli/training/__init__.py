"""Training: the trainer and its callbacks, loaders, data and label spaces, optimiser and loss,
scoring, retrieval references, distributed launch and recipes (run folders: ``geocli.store``)."""
