# The firmware's app slots (board glue, beside board.py: it imports esp32): where an update goes,
# how it is written and handed to the bootloader. Loaded by the first firmware update (or its
# GET /api/update); nostall/update.py drives it through Board.firmware_slot().
#
# With the OTA partition table (two app slots, otadata) and ESP-IDF's rollback (MicroPython's
# sdkconfig.base enables it): set_boot() validates the image (ESP-IDF's own checks, its SHA-256)
# and selects the slot for the next reset; the bootloader runs it once as "pending verify"; unless
# the firmware then calls mark_app_valid_cancel_rollback(), the next reset returns to the other
# slot (../shared/qemu-c3/README.md, "OTA variant", has it tried on the real bootloader).

import esp32

BLOCK = 4096  # the flash's erase block (ioctl 6 erases one; writeblocks(n, buf, offset) only writes)


def label(p):
    return p.info()[4]


def running():
    return esp32.Partition(esp32.Partition.RUNNING)  # pyright: ignore[reportArgumentType] - the stubs say a label


def chip_id():
    """The chip the running firmware was built for: its image header's chip id (esp_app_format.h:
    bytes 12-13), exact on every board and on the sim (0 ESP32, 5 ESP32-C3)."""
    head = bytearray(16)
    running().readblocks(0, head)
    return head[12] | head[13] << 8


def slots():
    """(running, boot, next) slot labels; next is None without an OTA partition table."""
    r = running()
    try:
        nxt = label(r.get_next_update())
    except OSError:  # ENOENT: the factory-only table
        nxt = None
    try:
        boot = label(esp32.Partition(esp32.Partition.BOOT))  # pyright: ignore[reportArgumentType]
    except OSError:
        boot = None
    return label(r), boot, nxt


class Slot:
    """The slot an update writes: block by block, then handed to the bootloader. OSError 2 when
    the firmware's partition table has no second app slot."""

    def __init__(self):
        self.part = running().get_next_update()
        info = self.part.info()
        self.label = info[4]
        self.size = info[3]

    def write(self, at, data):
        """data at byte at of the slot; each 4 KB block is erased when its first byte comes (an
        older image leaves nothing in it), then written piece by piece."""
        n, off = divmod(at, BLOCK)
        if off == 0:
            self.part.ioctl(6, n)  # MP_BLOCKDEV_IOCTL_BLOCK_ERASE
        self.part.writeblocks(n, data, off)

    def set_boot(self):
        """The next reset runs this slot (OSError -5379, ESP_ERR_OTA_VALIDATE_FAILED: ESP-IDF
        refused the image, and nothing changed)."""
        self.part.set_boot()


def mark_valid():
    """The running firmware is good: the bootloader keeps it (no rollback at the next reset)."""
    esp32.Partition.mark_app_valid_cancel_rollback()
