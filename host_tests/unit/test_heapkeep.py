# The heap keeper (firmware/nostall/heapkeep.py): frequent collections only while the system
# heap is down by the margin from its high mark. Runs on CPython and on MicroPython, with a fake
# system heap and a fake gc.threshold; the real one is test_qemu_board.py's WebSocket test.

from nostall.heapkeep import HeapKeeper


def _keeper(readings, every=16384, margin=16384):
    set_to = []
    it = iter(readings)
    k = HeapKeeper(lambda: next(it), every, margin, set_to.append)
    return k, set_to


def test_collections_only_when_full_until_the_system_heap_drops_by_the_margin():
    k, set_to = _keeper([110000, 100000, 94000, 111000, 96000, 94500])
    assert set_to == [-1]  # from the start: collect when full
    for _ in range(5):
        k.tick()
    assert set_to == [-1] and not k.grown  # 110000 - 94000 is under the margin; the high mark rose to 111000
    k.tick()  # 111000 - 94500 > 16384: an area was added (or lwIP holds that much)
    assert set_to == [-1, 16384] and k.grown and k.high == 111000


def test_back_to_full_only_collections_once_the_area_is_given_back():
    k, set_to = _keeper([111000, 17000, 17000, 60000, 108000, 20000])
    for _ in range(3):
        k.tick()
    assert set_to == [-1, 16384]  # turned on once, not at every tick
    k.tick()
    assert set_to == [-1, 16384] and k.grown  # 60000: still down by more than the margin
    k.tick()
    assert set_to == [-1, 16384, -1] and not k.grown  # back within the margin
    k.tick()
    assert set_to == [-1, 16384, -1, 16384]


def test_every_0_means_only_when_full_and_margin_0_means_always():
    k, set_to = _keeper([100000, 10000], every=0)
    k.tick()
    k.tick()
    assert set_to == [-1, -1] and k.grown  # grown, but "every" 0 is the full heap's collection
    k, set_to = _keeper([100000, 99999], margin=0)
    k.tick()
    k.tick()
    assert set_to == [-1, 16384]  # any drop at all
