"""Small ESP-IDF app images for the tests (the layout firmware/nostall/appimage.py checks, from
ESP-IDF's esp_app_format.h / esp_image_format.h): a header with the chip id, an esp_app_desc_t
segment (version, project name, ...), filler segments, the XOR checksum, the appended SHA-256.
Valid as far as esp_image_verify goes (what esp_ota_set_boot_partition checks), not bootable:
the code is filler. Also: re-seal an existing image after patching it (another chip id, a
changed byte kept consistent), and corrupt one.

PyPI esptool (bin_image.ESP32FirmwareImage) can write such images too, but it is only in the
build venv (requirements-build.txt, not `make venv`), and it pads flash-mapped segments to 64 KB
boundaries; this needs nothing but hashlib.

    img = build(chip_id=5, version="1.2.3", size=64 * 1024)
    esp32 = reseal(real_c3_image, chip_id=0)   # the same image, marked for the original ESP32
"""

import hashlib
import struct

MAGIC = 0xE9
DESC_MAGIC = 0xABCD5432
CHIP_ESP32, CHIP_S2, CHIP_C3, CHIP_S3 = 0, 2, 5, 9
# load addresses of a C3 app's first segments (the real micropython.bin's): DROM, then IROM
_DROM, _IROM = 0x3C0C0020, 0x42000020


def app_desc(version="", project_name="", time="12:00:00", date="Jan  1 2026", idf_ver="v5.3", secure_version=0,
             elf_sha256=b"\x00" * 32):
    """esp_app_desc_t: 256 bytes."""
    d = struct.pack("<II8x32s32s16s16s32s32s", DESC_MAGIC, secure_version, version.encode(),
                    project_name.encode(), time.encode(), date.encode(), idf_ver.encode(), elf_sha256)
    return d + b"\x00" * (256 - len(d))


def header(chip_id, segments, hash_appended=True, entry=0x403803C4, spi_mode=2, spi_speed_size=0x2F,
           min_rev=3, min_rev_full=3, max_rev_full=199):
    """The 24-byte image header with its extended part (the real C3 image's values by default)."""
    return struct.pack("<BBBBIB3sHBHH4sB", MAGIC, segments, spi_mode, spi_speed_size, entry, 0xEE, b"\x00\x00\x00",
                       chip_id, min_rev, min_rev_full, max_rev_full, b"\x00" * 4, 1 if hash_appended else 0)


def seal(body, hash_appended=True):
    """Header and segments -> the image: zero padding, the checksum ending a 16-byte row, the
    SHA-256 of all that. The checksum is computed from the segments body describes."""
    c = 0xEF
    nseg = body[1]
    off = 24
    for _ in range(nseg):
        _, n = struct.unpack_from("<II", body, off)
        for b in body[off + 8 : off + 8 + n]:
            c ^= b
        off += 8 + n
    body = bytes(body[:off])
    body += b"\x00" * (15 - len(body) % 16) + bytes([c])
    return body + hashlib.sha256(body).digest() if hash_appended else body


def build(chip_id=CHIP_C3, version="0.0.1", project_name="nostall", size=None, segments=None, hash_appended=True,
          seed=1, **desc):
    """A valid app image. segments: [(load address, data)] after the app description's (default:
    one filler segment, so that the image is about size bytes; 4 KB when size is None)."""
    first = app_desc(version, project_name, **desc)
    if segments is None:
        n = max(4, ((size or 4096) - 24 - 8 - len(first) - 8 - 16 - 32) // 4 * 4)
        segments = [(_IROM, filler(n, seed))]
    segs = [(_DROM, first)] + list(segments)
    body = header(chip_id, len(segs), hash_appended)
    for addr, data in segs:
        assert len(data) % 4 == 0, "segment lengths are multiples of 4"
        body += struct.pack("<II", addr, len(data)) + data
    return seal(body, hash_appended)


def filler(n, seed=1):
    """n bytes of repeatable noise (so the checksum is not trivially 0xEF)."""
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:n])


def image_end(img):
    """Length of the image up to its checksum byte included (without the appended hash)."""
    off = 24
    for _ in range(img[1]):
        off += 8 + struct.unpack_from("<II", img, off)[1]
    return off + (15 - off % 16) + 1


def reseal(img, chip_id=None, hash_appended=None):
    """img with its header changed (chip id) and its checksum and SHA-256 made right again."""
    img = bytearray(img[: image_end(img)])
    if chip_id is not None:
        struct.pack_into("<H", img, 12, chip_id)
    if hash_appended is not None:
        img[23] = 1 if hash_appended else 0
    return seal(img, bool(img[23]))


def corrupt(img, offset=None, n=16):
    """img with n bytes flipped at offset (default: the middle), as the QEMU check did."""
    img = bytearray(img)
    offset = len(img) // 2 if offset is None else offset
    for i in range(offset, offset + n):
        img[i] ^= 0xFF
    return bytes(img)
