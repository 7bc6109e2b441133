"""The build's progress line: rate and time left in a log, nothing when disabled."""

from __future__ import annotations

import io

import numpy as np

from rag.encoding.encoder import encode_in_batches
from rag.encoding.progress import LOG_EVERY_S, Progress, eta_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_text() -> None:
    assert eta_text(0.4) == "0 s"
    assert eta_text(59) == "59 s"
    assert eta_text(185) == "3 min 05 s"
    assert eta_text(3720) == "1 h 02 min"


def test_log_lines_show_rate_and_time_left() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with Progress(1000, "embedding", "passage", stream=stream, clock=clock) as bar:
        clock.now += 1
        bar.update(100)  # too soon for a line
        assert stream.getvalue() == ""
        clock.now += LOG_EVERY_S
        bar.update(100)  # 200 in 16 s: 12.5/s, 800 left -> 64 s
    lines = stream.getvalue().splitlines()
    assert lines[0] == "embedding: 200/1,000 passages (20%), 12 passages/s, about 1 min 04 s left"
    assert lines[-1].startswith("embedding: 200/1,000 passages (20%)")  # the closing line


def test_finished_line_and_disabled() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with Progress(10, "embedding", "passage", stream=stream, clock=clock) as bar:
        clock.now += 2
        bar.update(10)
    assert stream.getvalue() == "embedding: 10/10 passages (100%), 5 passages/s, 2 s in all\n"
    quiet = io.StringIO()
    with Progress(10, "embedding", "passage", enabled=False, stream=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_no_line_when_interrupted() -> None:
    stream = io.StringIO()
    try:
        with Progress(10, "embedding", "passage", stream=stream, clock=FakeClock()) as bar:
            bar.update(3)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert stream.getvalue() == ""


def test_shuffled_batches_keep_every_vector_in_place() -> None:
    texts = [("x" * (i % 7 + 1)) + str(i) for i in range(50)]
    seen: list[int] = []

    def encode_batch(batch: list[str]):  # noqa: ANN202
        lengths = [len(t) for t in batch]
        assert max(lengths) - min(lengths) <= 2  # batches are of similar length
        for t in batch:
            i = int(t.lstrip("x"))
            seen.append(i)
            v = np.zeros(4, np.float32)
            v[i % 4] = 1.0 + i
            yield v, np.ones((1, 4), np.float32), [(0, len(t))]

    vectors, spans = encode_in_batches(texts, [[(0, 1)]] * len(texts), 4, 8, encode_batch)
    assert sorted(seen) == list(range(50)) and seen != sorted(seen, key=lambda i: len(texts[i]))
    for i in range(50):
        assert vectors[i].argmax() == i % 4 and len(spans[i]) == 1
