# Where MicroPython grows its GC heap from the system's (the esp32 port: it adds an area as large
# as the heap so far, up to ESP-IDF's largest free block, when an allocation does not fit after a
# collection), an area grown for a transient goes back only at a collection that finds it empty.
# Collecting only when the heap is full lets what is kept meanwhile hold that area for good, and
# lwIP and the network driver go short (config.py, gc_every_bytes). Collecting every
# gc_every_bytes allocated prevents that, but costs a C3 about a fifth of its work per request
# (a collection is ~450k instructions there) while the heap is not grown at all, which is nearly
# always. So the server's ticker reads the system heap's free bytes (ESP-IDF's: ~10k
# instructions) and turns the frequent collections on only while they are heap_grown_bytes below
# their highest since the server started: MicroPython's heap grew, or lwIP or the network driver
# holds that much (then they stay on for as long: what every request paid before, no more).
#
#     keeper = HeapKeeper(board.system_free, cfg.gc_every_bytes, cfg.heap_grown_bytes)
#     keeper.tick()      # every tick: gc.threshold(gc_every_bytes) while grown, else -1

import gc


class HeapKeeper:
    """Turns collections every `every` bytes on while the system heap's free bytes
    (system_free()) are more than `margin` below their high mark; off (-1: when full) otherwise."""

    def __init__(self, system_free, every, margin, threshold=None):
        self.system_free = system_free
        self.every = every if every else -1
        self.margin = margin
        self.threshold = threshold = threshold or gc.threshold  # a test's fake: CPython has none
        self.high = 0  # the most the system heap had free (the first tick's reading, then higher ones)
        self.grown = False
        threshold(-1)

    def tick(self):
        free = self.system_free()
        if free > self.high:
            self.high = free
        grown = free + self.margin < self.high
        if grown != self.grown:
            self.grown = grown
            self.threshold(self.every if grown else -1)
