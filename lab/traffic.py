"""Send requests at a steady rate and remember every answer: the truth an experiment
compares the backends with."""

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Answer:
    sent_at: float  # wall-clock time, as the backends timestamp their points
    seconds: float  # what the client waited
    status: int  # 0: no answer (connection refused or reset)


def send(url: str, rate: float, seconds: float, threads: int = 16, tick: Callable[[], None] | None = None):
    """GET `url` `rate` times a second for `seconds`; return every Answer.

    Open loop: request i leaves at start + i / rate whatever happened to the
    ones before, as users arrive; a slow app gets a queue, not less traffic.
    `tick` is called about every 0.2 s (a progress bar).
    """
    total = round(rate * seconds)
    answers: list[Answer] = []
    counter = itertools.count()
    lock = threading.Lock()
    start = time.monotonic()
    wall_offset = time.time() - start

    def worker():
        session = requests.Session()
        while (i := next(counter)) < total:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.monotonic()
            try:
                status = session.get(url, timeout=30).status_code
            except requests.RequestException:
                status = 0
            answer = Answer(began + wall_offset, time.monotonic() - began, status)
            with lock:
                answers.append(answer)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        while thread.is_alive():
            thread.join(0.2)
            if tick is not None:
                tick()
    return sorted(answers, key=lambda answer: answer.sent_at)
