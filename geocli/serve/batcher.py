"""One model, many requests: uploads from concurrent requests are predicted together in batches.

The predictor is used from one worker thread only (models need not be thread-safe); requests
put their photos on a queue and wait on futures. The worker takes what is queued, up to
``batch_size`` photos, waiting at most ``max_wait_s`` for more to arrive once the first is there.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import groupby


@dataclass
class Job:
    name: str
    data: bytes
    top_k: int
    future: Future = field(default_factory=Future)


class BatchingPredictor:
    """Runs ``predictor`` (a ``geocli.predict.predictor.Predictor``) over queued uploads, batch by batch."""

    def __init__(self, predictor, batch_size: int = 8, max_wait_s: float = 0.02) -> None:
        self.predictor, self.batch_size, self.max_wait_s = predictor, batch_size, max_wait_s
        self.batch_sizes: list[int] = []  # every batch run, for the logs and tests
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, name="geocli-predict", daemon=True)
        self._worker.start()

    def submit(self, uploads: list[tuple[str, bytes]], top_k: int) -> list[Future]:
        """One future per upload; each resolves to that upload's record."""
        jobs = [Job(name, data, top_k) for name, data in uploads]
        for job in jobs:
            self._queue.put(job)
        return [job.future for job in jobs]

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self.batch_sizes.append(len(batch))
            for top_k, group in groupby(sorted(batch, key=lambda j: j.top_k), key=lambda j: j.top_k):
                self._run(list(group), top_k)

    def _take(self) -> list[Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.batch_size:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(job)
        return batch

    def _run(self, jobs: list[Job], top_k: int) -> None:
        try:
            records = list(self.predictor.predict([(j.name, j.data) for j in jobs], top_k=top_k,
                                                  batch_size=len(jobs)))
        except Exception as exc:  # a model failure fails these requests, not the server
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, record in zip(jobs, records):
            job.future.set_result(record)
