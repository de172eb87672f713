"""Pipeline stages in threads: `run_ahead` moves an iterator's work into a thread of its own.

Chained, `run_ahead(stage2(run_ahead(stage1)))`, each stage works while the next consumes,
joined by bounded queues, so memory holds `depth` items per stage whatever the stream's
length (`vois_cli.inference.Predictor.predict_frames`: decoding, the model, post-processing).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


def run_ahead(items: Iterator, depth: int) -> Iterator:
    """The items of `items`, produced in a thread at most `depth` ahead of the consumer.

    ffmpeg runs in its own process and torch releases the GIL, so stages chained this way
    overlap. An error in the thread is raised here; leaving the loop early (close the
    generator) stops the thread, which closes `items` (a decoder, an upstream stage).
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # handed to the consumer, which raises it
            put(e)
        finally:
            if hasattr(items, "close"):
                items.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
