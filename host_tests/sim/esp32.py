"""Fake of the ESP32 port's esp32 module for the sim board, the parts this project's firmware
touches: the die temperature, the IDF heap (MicroPython v1.28.0 ports/esp32/modesp32.c) and
Partition with over-the-air updates and the bootloader's rollback (esp32_partition.c; the flash,
otadata and the bootloader are _simflash.py's: $SIM_OTA=1 gives the OTA layout). As
on the chips: the C3 (and S2, S3) has mcu_temperature(), Celsius, rounded to an int; the
original ESP32 has raw_temperature(), Fahrenheit, uncalibrated. Which: $SIM_CHIP. The die warms
and cools by a degree or so around 30 C. MicroPython only."""

import os
import time

import _simlink

HEAP_DATA = 4  # MALLOC_CAP_8BIT
HEAP_EXEC = 1  # MALLOC_CAP_EXEC
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def _celsius():
    t = time.ticks_ms() // 1000 % 20  # a 20 s swing, 29..31 C
    return 29.0 + (t if t < 10 else 20 - t) / 5


if _simlink.CHIP == "esp32":

    def raw_temperature():
        return int(_celsius() * 1.8 + 32)

else:

    def mcu_temperature():
        return int(_celsius() + 0.5)


def idf_heap_info(capabilities):
    # (total, free, largest free block, minimum free) per IDF heap region: one region here
    return [(240000, 120000, 110000, 100000)] if capabilities & (HEAP_DATA | HEAP_EXEC) else []


_OTA = os.getenv("SIM_OTA") not in (None, "", "0")
if _OTA:
    import _simflash  # noqa: F401  (the OTA layout: its bootloader chooses the app now, at start-up)
# the default layout's app (_simflash.TABLE): what every board asks at start-up, answered without
# loading _simflash, whose code would take some 20 KB of the sim's heap (C on a board)
_FACTORY = ("factory", 0, 0, 0x10000, 0x1F0000)


class Partition:
    """esp32.Partition (ports/esp32/esp32_partition.c) over the sim's flash (_simflash.py): the
    OTA layout of firmware-ota.bin with $SIM_OTA=1, else the default firmware.bin's."""

    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        if not _OTA and id in (Partition.RUNNING, Partition.BOOT):
            if id == Partition.BOOT:
                raise OSError(2)  # as the port: no otadata, no boot partition to name
            self._p = _FACTORY
            self._bs = block_size
            return
        import _simflash as f

        if isinstance(id, tuple):  # one of _simflash.TABLE (find(), get_next_update())
            p = id
        elif isinstance(id, int):
            if id == Partition.BOOT:
                p = f.boot_partition()
            elif id == Partition.RUNNING:
                p = f.running()
            else:
                raise ValueError()
        else:
            p = f.find_first(f.TYPE_APP, 0xFF, id) or f.find_first(f.TYPE_DATA, 0xFF, id)
        if p is None:
            raise OSError(2)  # MP_ENOENT
        self._p = p
        self._bs = block_size

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=4096):
        import _simflash as f

        return [Partition(p, block_size) for p in f.find(type, subtype, label)]

    def info(self):
        label, typ, subtype, address, size = self._p
        return (typ, subtype, address, size, label, False)

    def __repr__(self):
        label, typ, subtype, address, size = self._p
        return "<Partition type=%u, subtype=%u, address=%u, size=%u, label=%s, encrypted=0>" % (
            typ, subtype, address, size, label)

    def readblocks(self, block_num, buf, offset=0):
        import _simflash as f

        buf[:] = f.read(self._p, block_num * self._bs + offset, len(buf))

    def writeblocks(self, block_num, buf, offset=None):
        import _simflash as f

        addr = block_num * self._bs
        if offset is not None:  # the extended form: no erase (the caller erased with ioctl 6)
            f.write(self._p, addr + offset, buf)
            return
        if self._bs >= f.BLOCK:
            f.erase(self._p, addr, len(buf))
        else:  # smaller blocks: the sectors around keep what they had
            first = addr // f.BLOCK * f.BLOCK
            last = (addr + len(buf) + f.BLOCK - 1) // f.BLOCK * f.BLOCK
            keep = f.read(self._p, first, last - first)
            f.erase(self._p, first, last - first)
            f.write(self._p, first, keep[: addr - first])
            f.write(self._p, addr + len(buf), keep[addr + len(buf) - first :])
        f.write(self._p, addr, buf)

    def ioctl(self, cmd, arg):
        import _simflash as f

        if cmd in (1, 2, 3):  # INIT, DEINIT, SYNC
            return 0
        if cmd == 4:  # BLOCK_COUNT
            return self._p[4] // self._bs
        if cmd == 5:  # BLOCK_SIZE
            return self._bs
        if cmd == 6:  # BLOCK_ERASE
            if self._bs != f.BLOCK:
                return -22  # -MP_EINVAL
            f.erase(self._p, arg * f.BLOCK, f.BLOCK)
            return 0
        return None

    def set_boot(self):
        if not _OTA:
            raise OSError(-261, "ESP_ERR_NOT_FOUND")  # no otadata to select a slot in (as on the port)
        import _simflash as f

        f.set_boot(self._p)

    def get_next_update(self):
        if not _OTA:
            raise OSError(2)  # MP_ENOENT: no OTA slots
        import _simflash as f

        p = f.next_update(self._p)
        if p is None:
            raise OSError(2)  # MP_ENOENT: no OTA slots
        return Partition(p)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        import _simflash as f

        f.mark_valid()
