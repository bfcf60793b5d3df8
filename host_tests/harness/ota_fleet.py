"""`make ota`: many boards at once (harness/ota.py): each board's update (harness.ota_update) in
a pool of opts.jobs threads, progress bars for the uploads under way, and the summary table."""

import concurrent.futures
import queue
import threading

from harness.ota_update import update_one

COLUMNS = ("board", "before", "after", "slot", "result", "seconds")


class Bars:
    """Progress bars (tqdm) for the uploads under way, one line each, lines reused as boards
    finish; off when stderr is not a terminal or with --no-progress. say() prints above them."""

    def __init__(self, enabled, lines):
        self.enabled = enabled
        self.free = queue.Queue()
        for i in range(lines):
            self.free.put(i)
        self.lock = threading.Lock()
        if enabled:
            from tqdm import tqdm

            self.tqdm = tqdm

    def say(self, board, msg):
        line = "%s: %s" % (board, msg)
        if self.enabled:
            self.tqdm.write(line)
        else:
            with self.lock:
                print(line, flush=True)

    def bar(self, board, total):
        return _Bar(self, board, total)


class _Bar:
    def __init__(self, bars, board, total):
        self.bars, self.board, self.total, self.t = bars, board, total, None

    def __enter__(self):
        if self.bars.enabled:
            self.pos = self.bars.free.get()
            self.t = self.bars.tqdm(total=self.total, desc=self.board, unit="B", unit_scale=True, unit_divisor=1024,
                                    position=self.pos, leave=False, dynamic_ncols=True)
        return self

    def update(self, n):
        if self.t is not None:
            self.t.update(n)

    def __exit__(self, *exc):
        if self.t is not None:
            self.t.close()
            self.bars.free.put(self.pos)


def run(targets, image, opts, bars):
    """Update every target, opts.jobs at a time -> the Rows in the targets' order."""
    rows = [None] * len(targets)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(targets)))) as ex:
        futures = {ex.submit(update_one, t, image, opts, bars.say, bars): i for i, t in enumerate(targets)}
        try:
            for f in concurrent.futures.as_completed(futures):
                rows[futures[f]] = f.result()
        except KeyboardInterrupt:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
    return rows


def table(rows):
    """The summary: a column per COLUMNS, padded."""
    cells = [list(COLUMNS)] + [[r.board, r.before or "-", r.after or "-", r.slot or "-", r.result,
                                 "%.1f" % r.seconds] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells)
