"""The sim board's flash partitions, OTA data and 2nd-stage bootloader, under the fake
esp32.Partition (esp32.py). MicroPython only.

Layouts (what `Partition.find()` lists, in table order; type, subtype, address, size, label):
$SIM_OTA=1 is MicroPython's partitions-4MiB-ota.csv, what ../shared/qemu-c3/firmware-ota.bin
has (nvs, otadata, phy_init, ota_0 at 0x10000 and ota_1 at 0x190000, 0x180000 each, and the vfs
main.c adds at 0x310000); otherwise partitions-4MiBplus.csv, the default firmware.bin's (nvs,
phy_init, factory, vfs at 0x200000), where there is no otadata and no second slot. The sim's
files stay in $SIM_HOME/flash whatever the table says: the vfs partition is not them.

Each partition's bytes are a file, $SIM_HOME/partitions/<label>.bin, read as 0xFF past its end
(erased flash), written as NOR flash is (a write clears bits: new = old & data; erase sets
0xFF), so they survive the runner's restarts and a process killed mid-write leaves what was
written. Errors are the port's: check_esp_err() raises OSError(-code, 'ESP_ERR_...')
(ports/esp32/mphalport.c), a missing partition OSError(ENOENT) (esp32_partition.c).

otadata holds two esp_ota_select_entry_t (ota_seq, seq_label, ota_state, crc) at 0 and 4096,
written as ESP-IDF's esp_ota_ops.c writes them, and the bootloader (boot(): once per sim
process, before the firmware asks) does what IDF's does with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
(checked on the QEMU C3, 2026-12-05, byte for byte): otadata erased -> entry 0 = seq 1, VALID,
boot ota_0; the active entry (valid, highest seq) NEW -> PENDING_VERIFY, boot it; PENDING_VERIFY
-> ABORTED and the other entry is active (the rollback); then the slot's image is verified
(esp_image_verify: header, chip id, segments, checksum, SHA-256) and, if it is not bootable,
the other slots are tried (otadata is left as it is: BOOT still names the bad slot).

At the first boot of a fresh home the first app slot gets a small valid app image for the sim's
chip (version $SIM_FW_VERSION, default "sim"): the firmware the board was flashed with."""

import hashlib
import os
import struct

import _simlink

BLOCK = 4096
TYPE_APP, TYPE_DATA = 0, 1
SUBTYPE_FACTORY, SUBTYPE_OTA_0 = 0x00, 0x10
NEW, PENDING_VERIFY, VALID, INVALID, ABORTED = 0, 1, 2, 3, 4  # esp_ota_img_states_t
UNSET = 0xFFFFFFFF
CHIP_ID = 0 if _simlink.CHIP == "esp32" else 5

ESP_FAIL = -1
ESP_ERR_INVALID_ARG = 0x102
ESP_ERR_INVALID_SIZE = 0x104
ESP_ERR_NOT_FOUND = 0x105
ESP_ERR_OTA_VALIDATE_FAILED = 0x1503
_NAMES = {ESP_FAIL: "ESP_FAIL", ESP_ERR_INVALID_ARG: "ESP_ERR_INVALID_ARG", ESP_ERR_INVALID_SIZE: "ESP_ERR_INVALID_SIZE",
          ESP_ERR_NOT_FOUND: "ESP_ERR_NOT_FOUND", ESP_ERR_OTA_VALIDATE_FAILED: "ESP_ERR_OTA_VALIDATE_FAILED"}

OTA = (os.getenv("SIM_OTA") or "0") not in ("0", "")
# (label, type, subtype, address, size), in the table's order
TABLE = (
    ("nvs", 1, 2, 0x9000, 0x4000), ("otadata", 1, 0, 0xD000, 0x2000), ("phy_init", 1, 1, 0xF000, 0x1000),
    ("ota_0", 0, 0x10, 0x10000, 0x180000), ("ota_1", 0, 0x11, 0x190000, 0x180000), ("vfs", 1, 0x81, 0x310000, 0xF0000),
) if OTA else (
    ("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000), ("factory", 0, 0, 0x10000, 0x1F0000),
    ("vfs", 1, 0x81, 0x200000, 0x200000),
)
_DIR = (os.getenv("SIM_HOME") or "/tmp/nostall-sim") + "/partitions"


def check(code):
    """The port's check_esp_err(): OSError(-code, name) unless ESP_OK."""
    if code:
        raise OSError(-code, _NAMES.get(code, "0x%x" % code))


def log(line):
    print(line)  # the board's console: the sim's log


def find(type, subtype=0xFF, label=None):
    return [p for p in TABLE if p[1] == type and subtype in (0xFF, p[2]) and (label is None or label == p[0])]


def find_first(type, subtype=0xFF, label=None):
    found = find(type, subtype, label)
    return found[0] if found else None


# Bytes of a partition: a file, 0xFF past its end

def _path(p):
    return "%s/%s.bin" % (_DIR, p[0])


def _file_size(p):
    try:
        return os.stat(_path(p))[6]
    except OSError:
        return 0


def _bounds(p, offset, n):
    if offset > p[4]:
        check(ESP_ERR_INVALID_ARG)
    if offset + n > p[4]:
        check(ESP_ERR_INVALID_SIZE)


def read(p, offset, n):
    _bounds(p, offset, n)
    have = _file_size(p)
    data = b""
    if offset < have:
        with open(_path(p), "rb") as f:
            f.seek(offset)
            data = f.read(min(n, have - offset))
    return data + b"\xff" * (n - len(data))


def _put(p, offset, data):
    """Store data at offset as it is (extending the file with erased bytes first)."""
    for d in (_DIR.rpartition("/")[0], _DIR):
        try:
            os.mkdir(d)
        except OSError:
            pass
    have = _file_size(p)
    with open(_path(p), "r+b" if have else "wb") as f:
        if offset > have:
            f.seek(have)
            gap = offset - have
            while gap:
                k = min(gap, BLOCK)
                f.write(b"\xff" * k)
                gap -= k
        f.seek(offset)
        f.write(data)


def erase(p, offset, n):
    _bounds(p, offset, n)
    if n % BLOCK:
        check(ESP_ERR_INVALID_SIZE)
    if offset % BLOCK:
        check(ESP_ERR_INVALID_ARG)
    n = min(n, _file_size(p) - offset)  # past the file's end it is erased already
    while n > 0:
        k = min(n, BLOCK)
        _put(p, offset, _ERASED if k == BLOCK else b"\xff" * k)
        offset += k
        n -= k


_ERASED = b"\xff" * BLOCK
_old = bytearray(BLOCK)  # what a block-sized write finds there (the sim's heap is a board's: no 4 KB per write)


def write(p, offset, data):
    """A flash write: it can only clear bits."""
    n = len(data)
    have = _file_size(p)
    if offset < have:  # past the file's end all is erased: nothing to look at
        if n == BLOCK and offset + n <= have:
            with open(_path(p), "rb") as f:
                f.seek(offset)
                f.readinto(_old)
            erased = _old == _ERASED
            old = _old
        else:
            old = read(p, offset, n)
            erased = old == b"\xff" * n
        if not erased:
            data = (int.from_bytes(old, "little") & int.from_bytes(bytes(data), "little")).to_bytes(n, "little")
    _put(p, offset, data)


# otadata (esp_ota_select_entry_t: ota_seq, seq_label[20], ota_state, crc)

def _crc(seq):
    c = 0  # the ROM's esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)
    for b in struct.pack("<I", seq):
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def read_otadata():
    """The two entries as [seq, state, crc ok], or None without an otadata partition."""
    p = find_first(TYPE_DATA, 0)
    if p is None:
        return None
    out = []
    for i in (0, 1):
        seq, _label, state, crc = struct.unpack("<I20sII", read(p, i * BLOCK, 32))
        out.append([seq, state, crc == _crc(seq)])
    return out


def write_otadata(entries, i):
    seq, state = entries[i][0], entries[i][1]
    p = find_first(TYPE_DATA, 0)
    erase(p, i * BLOCK, BLOCK)
    write(p, i * BLOCK, struct.pack("<I20sII", seq, b"\xff" * 20, state, _crc(seq)))
    entries[i][2] = True


def _valid(e):  # bootloader_common_ota_select_valid
    return e[0] != UNSET and e[2] and e[1] not in (INVALID, ABORTED)


def _empty(e):  # bootloader_common_ota_select_invalid
    return e[0] == UNSET or not e[2]


def active(entries):
    """bootloader_common_get_active_otadata: the valid entry with the highest seq (0 on a tie), or -1."""
    v = [_valid(e) for e in entries]
    if v[0] and v[1]:
        return 0 if entries[0][0] >= entries[1][0] else 1
    return 0 if v[0] else 1 if v[1] else -1


def ota_slots():
    return [p for p in TABLE if p[1] == TYPE_APP and SUBTYPE_OTA_0 <= p[2] < SUBTYPE_OTA_0 + 16]


def _default_boot():  # find_default_boot_partition: factory, else the first OTA slot
    return find_first(TYPE_APP, SUBTYPE_FACTORY) or (ota_slots() or [None])[0]


def boot_partition():
    """esp_ota_get_boot_partition()."""
    entries = read_otadata()
    if entries is None:
        return None
    slots = ota_slots()
    if (_empty(entries[0]) and _empty(entries[1])) or not slots:
        return _default_boot()
    a = active(entries)
    if a == -1:
        return _default_boot()
    return find_first(TYPE_APP, SUBTYPE_OTA_0 + (entries[a][0] - 1) % len(slots))


def set_boot(p):
    """esp_ota_set_boot_partition()."""
    if not verify(p):
        check(ESP_ERR_OTA_VALIDATE_FAILED)
    if p[1] != TYPE_APP:
        check(ESP_ERR_INVALID_ARG)
    entries = read_otadata()
    if entries is None:
        check(ESP_ERR_NOT_FOUND)
    if p[2] == SUBTYPE_FACTORY:
        od = find_first(TYPE_DATA, 0)
        erase(od, 0, od[4])
        return
    n = len(ota_slots())
    slot = p[2] & 0x0F
    if slot >= n:
        check(ESP_ERR_INVALID_ARG)
    a = active(entries)
    if a != -1:  # esp_rewrite_ota_data: the next seq that selects this slot
        seq = entries[a][0]
        i = 0
        while seq > (slot + 1) % n + i * n:
            i += 1
        nxt = 1 - a
        entries[nxt][0] = (slot + 1) % n + i * n
    else:
        nxt = 0
        entries[nxt][0] = slot + 1
    entries[nxt][1] = NEW  # CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE: the first boot is monitored
    write_otadata(entries, nxt)


def next_update(p):
    """esp_ota_get_next_update_partition(p): the OTA slot after p, else the first; None if none."""
    slots = ota_slots()
    for i, s in enumerate(slots):
        if s is p:
            return slots[(i + 1) % len(slots)]
    return slots[0] if slots else None


def mark_valid():
    """esp_ota_mark_app_valid_cancel_rollback()."""
    entries = read_otadata()
    if entries is None:
        check(ESP_ERR_NOT_FOUND)
    a = active(entries)
    if a == -1 or not ota_slots():
        log("E esp_ota_ops: Running firmware is factory")
        check(ESP_FAIL)
    if entries[a][1] != VALID:
        entries[a][1] = VALID
        write_otadata(entries, a)


# esp_image_verify: is the partition's image bootable?

def _xor(data):
    # folded 256 bytes at a time: the big ints stay small in the sim's heap (a board's size)
    mv = memoryview(data)
    c = 0
    for i in range(0, len(mv), 256):
        part = mv[i : i + 256]
        v = int.from_bytes(part, "little")
        n = len(part)
        while n > 1:
            half = (n + 1) // 2
            v = (v >> (half * 8)) ^ (v & ((1 << (half * 8)) - 1))
            n = half
        c ^= v & 0xFF
    return c


def verify(p, silent=False):
    """True if p holds an app image the bootloader would load (header, this chip, segments that
    fit, checksum, appended SHA-256); else False, after logging why as IDF does."""
    why = _verify(p)
    if why and not silent:
        log("E esp_image: " + why)
    return not why


def _verify(p):
    h = read(p, 0, 24)
    if h[0] != 0xE9:
        return "image at 0x%x has invalid magic byte (nothing flashed here?)" % p[3]
    nseg, chip, hashed = h[1], struct.unpack_from("<H", h, 12)[0], h[23]
    if chip != CHIP_ID:
        return "mismatch chip ID, expected %d, found %d" % (CHIP_ID, chip)
    if not 1 <= nseg <= 16:
        return "image at 0x%x has %d segments" % (p[3], nseg)
    sha = hashlib.sha256(h)
    c = 0xEF
    off = 24
    for _ in range(nseg):
        if off + 8 > p[4]:
            return "image length doesn't fit in partition length %d" % p[4]
        sh = read(p, off, 8)
        sha.update(sh)
        n = struct.unpack("<II", sh)[1]
        off += 8
        if n % 4 or off + n > p[4]:
            return "invalid segment length 0x%x" % n
        while n:
            k = min(n, BLOCK)
            d = read(p, off, k)
            sha.update(d)
            c ^= _xor(d)
            off += k
            n -= k
    end = off + (15 - off % 16) + 1
    if end + (32 if hashed else 0) > p[4]:
        return "image length %d doesn't fit in partition length %d" % (end, p[4])
    tail = read(p, off, end - off)
    sha.update(tail)
    if tail[-1] != c:
        return "Checksum failed. Calculated 0x%x read 0x%x" % (c, tail[-1])
    if hashed and read(p, end, 32) != sha.digest():
        return "Image hash failed - image is corrupt"
    return None


def make_image(version, chip_id=CHIP_ID):
    """A small valid app image (the esp_app_desc_t segment and some filler)."""
    desc = struct.pack("<II8x32s32s16s16s32s32s", 0xABCD5432, 0, version.encode(), b"nostall-sim", b"00:00:00",
                       b"Jan  1 2026", b"sim", b"\x00" * 32)
    segs = ((0x3C0C0020, desc + b"\x00" * (256 - len(desc))), (0x42000020, bytes(range(256))))
    body = struct.pack("<BBBBIB3sHBHH4sB", 0xE9, len(segs), 2, 0x2F, 0x403803C4, 0xEE, b"\x00\x00\x00", chip_id, 3, 3,
                       199, b"\x00" * 4, 1)
    c = 0xEF
    for addr, data in segs:
        body += struct.pack("<II", addr, len(data)) + data
        c ^= _xor(data)
    body += b"\x00" * (15 - len(body) % 16) + bytes([c])
    return body + hashlib.sha256(body).digest()


# The 2nd-stage bootloader, once per sim process

_running = []


def boot():
    """Choose the app to run, as the bootloader does at each reset; the partition (also running())."""
    if _running:
        return _running[0]
    first = _default_boot()
    if not _file_size(first):  # a fresh home: the board as flashed
        _put(first, 0, make_image(os.getenv("SIM_FW_VERSION") or "sim"))
    index = -1  # the factory app
    entries = read_otadata()
    slots = ota_slots()
    if entries is not None and slots:
        if _empty(entries[0]) and _empty(entries[1]):
            index = 0
            if first is slots[0] and _empty(entries[0]):  # no factory app: ota_0 from now on
                entries[0][0], entries[0][1] = 1, VALID
                write_otadata(entries, 0)
        else:
            a = active(entries)
            if a != -1 and entries[a][1] == PENDING_VERIFY:  # reset before it was marked valid: roll back
                entries[a][1] = ABORTED
                write_otadata(entries, a)
                a = active(entries)
            elif a != -1 and entries[a][1] == NEW:
                entries[a][1] = PENDING_VERIFY
                write_otadata(entries, a)
            index = (entries[a][0] - 1) % len(slots) if a != -1 else 0
    # load it; failing that, the slots before it down to the factory app, then the ones after it
    order = list(range(index, -2, -1)) + list(range(index + 1, len(slots)))
    for i in order:
        p = find_first(TYPE_APP, SUBTYPE_FACTORY) if i == -1 else slots[i] if i < len(slots) else None
        if p is not None and verify(p):
            _running.append(p)
            return p
        if p is not None:
            log("E boot: %s app partition slot %d is not bootable" % ("Factory" if i == -1 else "OTA", i))
    log("E boot: No bootable app partitions in the partition table")
    raise SystemExit(1)  # a board resets in a loop from here: the sim ends


def running():
    return boot()
