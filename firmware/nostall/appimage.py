"""Checks an ESP-IDF app image (what an OTA update writes into a slot: the build's micropython.bin,
not the merged firmware.bin) as its bytes arrive. Sans-IO: feed() takes the upload in pieces of
any size and raises ImageError as soon as something is wrong (a bad magic or another chip's image
at the first 24 bytes, a merged firmware.bin or a bootloader at byte 36, a segment that cannot
fit the slot at its own header, a bad checksum or appended SHA-256 as they arrive), so an upload
can be refused early; finish() says whether the image is complete (and, if the client supplied
one, whether the SHA-256 of the whole file matches).

The layout (ESP-IDF components/bootloader_support/include/esp_app_format.h, esp_image_format.h):
a 24-byte header (magic 0xE9, segment count, SPI mode, SPI speed/size, entry address, then the
extended header: WP pin, SPI drive settings, chip id, min chip rev, min/max chip rev full, 4
reserved bytes, hash_appended); the segments, each an 8-byte header (load address, length) and
its data; zero padding up to a 16-byte boundary whose last byte is the XOR checksum of every
segment's data (seed 0xEF); then, with hash_appended, the SHA-256 of everything before it. The
first segment's data starts with esp_app_desc_t (magic 0xABCD5432): the app's version, project
name, build time and date, IDF version. A real micropython.bin ends right after the SHA-256: trailing
bytes are refused unless allow_padding (then only 0xFF: a slot read back, erased flash).

    img = AppImage(chip_id=CHIP_C3, max_size=part_size, sha256=client_hex_or_None)
    for piece in upload:
        img.feed(piece)          # ImageError: refuse the upload now
    img.finish()                 # ImageError: truncated, or the client's SHA-256 differs
    img.desc["version"], img.chip_id, img.size

MicroPython and CPython."""

import hashlib
import struct

MAGIC = 0xE9
DESC_MAGIC = 0xABCD5432
BOOTLOADER_DESC_MAGIC = 0x50  # esp_bootloader_desc_t's first byte (IDF 5.3+ bootloaders)
HEADER_SIZE = 24
SEGMENT_HEADER_SIZE = 8
DESC_SIZE = 256  # sizeof(esp_app_desc_t)
MAX_SEGMENTS = 16  # ESP_IMAGE_MAX_SEGMENTS
CHECKSUM_SEED = 0xEF
HASH_SIZE = 32
CHIP_ESP32, CHIP_S2, CHIP_C3, CHIP_S3 = 0, 2, 5, 9
CHIPS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2", 13: "esp32c6", 16: "esp32h2",
         18: "esp32p4"}  # esp_chip_id_t
DEFAULT_MAX_SIZE = 0x180000  # an app slot of MicroPython's partitions-4MiB-ota.csv

# where feed() is
_HEADER, _SEG_HEAD, _SEG_DATA, _PAD, _HASH, _TRAIL = 0, 1, 2, 3, 4, 5
_FOLD = 256  # bytes folded into the checksum at once: the big ints it makes stay small (a few hundred bytes)


class ImageError(ValueError):
    """Why an image is refused: reason is a short word (magic, chip, header, segments, too_big,
    segment, not_app, bootloader, checksum, hash, no_hash, truncated, trailing, sha256); str() the
    sentence for a person."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def chip_name(chip_id):
    return CHIPS.get(chip_id, "chip %d" % chip_id)


def _xor_fold(data):
    """The XOR of every byte of data, without a Python loop per byte."""
    v = int.from_bytes(data, "little")
    n = len(data)
    while n > 1:
        half = (n + 1) // 2
        v = (v >> (half * 8)) ^ (v & ((1 << (half * 8)) - 1))
        n = half
    return v & 0xFF


def _cstr(b):
    i = b.find(b"\x00")
    if i >= 0:
        b = b[:i]
    try:
        return b.decode()
    except Exception:  # not UTF-8: keep what is ASCII
        return "".join([chr(c) if 32 <= c < 127 else "?" for c in b])


def parse_desc(buf):
    """esp_app_desc_t from its 256 bytes: a dict, or None if the magic word is not there."""
    if len(buf) < DESC_SIZE or struct.unpack_from("<I", buf, 0)[0] != DESC_MAGIC:
        return None
    secure_version = struct.unpack_from("<I", buf, 4)[0]
    return {
        "secure_version": secure_version,
        "version": _cstr(buf[16:48]),
        "project_name": _cstr(buf[48:80]),
        "time": _cstr(buf[80:96]),
        "date": _cstr(buf[96:112]),
        "idf_ver": _cstr(buf[112:144]),
        "elf_sha256": "".join(["%02x" % c for c in buf[144:176]]),
    }


class AppImage:
    """One image being checked. chip_id: the board's (None: any chip); max_size: the slot's size
    (the image and any padding must fit); sha256: the whole file's SHA-256 the client gave (hex
    str or 32 bytes; checked by finish()); require_hash: refuse an image without an appended
    SHA-256 (the 8-bit checksum alone does not catch a corrupted upload); require_desc: refuse an
    image whose first segment has no esp_app_desc_t (a bootloader, a merged firmware.bin);
    allow_padding: 0xFF bytes after the image are accepted.

    After the first 24 bytes: chip_id, segments, entry, spi_mode, spi_speed_size, min_rev_full,
    max_rev_full, hash_appended. After byte 288: desc (parse_desc; None without require_desc). At the end: size (the
    image's length, its SHA-256 included), checksum, sha256 (hex of the whole file), received."""

    def __init__(self, chip_id=None, max_size=DEFAULT_MAX_SIZE, sha256=None, require_hash=True, require_desc=True,
                 allow_padding=False):
        self.want_chip = chip_id
        self.max_size = max_size
        if isinstance(sha256, str):
            sha256 = bytes([int(sha256[i : i + 2], 16) for i in range(0, len(sha256), 2)])
        if sha256 is not None and len(sha256) != HASH_SIZE:
            raise ValueError("sha256: 32 bytes or 64 hex digits")
        self.want_sha256 = sha256
        self.require_hash = require_hash
        self.require_desc = require_desc
        self.allow_padding = allow_padding
        self.received = 0
        self.error = None
        self.chip_id = self.segments = self.entry = self.spi_mode = self.spi_speed_size = None
        self.min_rev_full = self.max_rev_full = self.hash_appended = None
        self.desc = None
        self.size = None
        self.checksum = None
        self.sha256 = None
        self._state = _HEADER
        self._buf = bytearray()  # a header being gathered (24 or 8 bytes), or the appended hash
        self._seg = 0  # segments whose header has been read
        self._left = 0  # bytes still to come in this part (segment data, padding)
        self._xor = CHECKSUM_SEED
        self._desc = None  # the first segment's first bytes, until DESC_SIZE of them
        self._img_hash = hashlib.sha256()  # the image up to its checksum byte
        self._file_hash = hashlib.sha256() if sha256 is not None else None  # every byte fed
        self._end = 0  # where the checksum byte is (the image's length before its hash)
        self._pos = 0  # bytes consumed

    def _fail(self, reason, message):
        self.error = ImageError(reason, message)
        raise self.error

    def feed(self, chunk):
        """Take the next piece of the file; ImageError (again at each later call) when refused."""
        if self.error is not None:
            raise self.error
        mv = memoryview(chunk)
        n = len(mv)
        if self._file_hash is not None and n:
            self._file_hash.update(mv)
        i = 0
        while i < n:
            i += self._step(mv, i, n)
        self.received += n

    def _step(self, mv, i, n):
        """Consume bytes of mv from i (fewer than n); how many."""
        st = self._state
        if st == _HEADER or st == _SEG_HEAD:
            need = (HEADER_SIZE if st == _HEADER else SEGMENT_HEADER_SIZE) - len(self._buf)
            take = min(need, n - i)
            self._buf.extend(mv[i : i + take])
            self._img_hash.update(mv[i : i + take])
            self._pos += take
            if take == need:
                if st == _HEADER:
                    self._header(bytes(self._buf))
                else:
                    self._segment_header(bytes(self._buf))
                self._buf = bytearray()
            return take
        if st == _SEG_DATA:
            take = min(self._left, n - i, _FOLD)
            part = mv[i : i + take]
            self._img_hash.update(part)
            self._xor ^= _xor_fold(part)
            if self._desc is not None:
                self._desc.extend(part[: DESC_SIZE - len(self._desc)])
                d = self._desc
                if len(d) >= DESC_SIZE or (len(d) >= 4 and struct.unpack_from("<I", d, 0)[0] != DESC_MAGIC):
                    self._app_desc(bytes(d))
            self._left -= take
            self._pos += take
            if not self._left:
                if self._desc is not None:  # a first segment shorter than esp_app_desc_t
                    self._app_desc(bytes(self._desc))
                self._next_segment()
            return take
        if st == _PAD:
            take = min(self._left, n - i)
            self._img_hash.update(mv[i : i + take])
            self._left -= take
            self._pos += take
            if not self._left:  # the last of them is the checksum
                self.checksum = mv[i + take - 1]
                if self.checksum != self._xor:
                    self._fail("checksum", "checksum 0x%02x, the data gives 0x%02x: the image is corrupt" % (
                        self.checksum, self._xor))
                if self.hash_appended:
                    self._state = _HASH
                else:
                    self._done()
            return take
        if st == _HASH:
            take = min(HASH_SIZE - len(self._buf), n - i)
            self._buf.extend(mv[i : i + take])
            self._pos += take
            if len(self._buf) == HASH_SIZE:
                if bytes(self._buf) != self._img_hash.digest():
                    self._fail("hash", "the appended SHA-256 does not match: the image is corrupt")
                self._buf = bytearray()
                self._done()
            return take
        # _TRAIL: after the image
        rest = mv[i:n]
        self._pos += n - i
        if not self.allow_padding:
            self._fail("trailing", "%d bytes after the end of the image (%d)" % (self._pos - self.size, self.size))
        if bytes(rest) != b"\xff" * len(rest):
            self._fail("trailing", "data after the end of the image (only 0xFF padding may follow)")
        if self._pos > self.max_size:
            self._fail("too_big", "more than %d bytes" % self.max_size)
        return n - i

    def _header(self, h):
        if h[0] != MAGIC:
            self._fail("magic", "not an ESP app image (first byte 0x%02x, not 0xE9)" % h[0])
        (_, nseg, self.spi_mode, self.spi_speed_size, self.entry, _wp, _drv, chip, _minrev, minfull, maxfull,
         _res, hashed) = struct.unpack("<BBBBIB3sHBHH4sB", h)
        self.segments, self.chip_id, self.min_rev_full, self.max_rev_full = nseg, chip, minfull, maxfull
        if self.want_chip is not None and chip != self.want_chip:
            self._fail("chip", "an image for %s, this board is %s" % (chip_name(chip), chip_name(self.want_chip)))
        if hashed > 1:
            self._fail("header", "bad header (hash_appended %d)" % hashed)
        self.hash_appended = bool(hashed)
        if self.require_hash and not hashed:
            self._fail("no_hash", "the image has no appended SHA-256")
        if not 1 <= nseg <= MAX_SEGMENTS:
            self._fail("segments", "%d segments (1 to %d)" % (nseg, MAX_SEGMENTS))
        self._state = _SEG_HEAD

    def _segment_header(self, h):
        addr, length = struct.unpack("<II", h)
        end = self._pos + length
        if self._seg + 1 == self.segments:  # the last: the padding and the checksum byte end a 16-byte row
            end += 15 - end % 16
        # this segment, then the checksum byte and the hash must still fit
        if end + 1 + (HASH_SIZE if self.hash_appended else 0) > self.max_size:
            self._fail("too_big", "segment %d (%d bytes at 0x%x) does not fit in %d bytes" % (
                self._seg, length, addr, self.max_size))
        if length % 4:
            self._fail("segment", "segment %d has length %d (not a multiple of 4)" % (self._seg, length))
        if self._seg == 0:
            if length < DESC_SIZE and self.require_desc:
                self._fail("not_app", "no app description: the first segment is %d bytes" % length)
            self._desc = bytearray()
        self._seg += 1
        self._left = length
        self._state = _SEG_DATA
        if not length:
            if self._desc is not None:
                self._app_desc(b"")
            self._next_segment()

    def _app_desc(self, d):
        self._desc = None
        self.desc = parse_desc(d)
        if self.desc is None and self.require_desc:
            if d[:1] == bytes([BOOTLOADER_DESC_MAGIC]):
                self._fail("bootloader", "a bootloader image (the merged firmware.bin?): send the app image")
            self._fail("not_app", "no app description (esp_app_desc_t) in the first segment")

    def _next_segment(self):
        if self._seg < (self.segments or 0):  # known here: the header came first
            self._state = _SEG_HEAD
            return
        pos = self._pos
        self._end = pos + (15 - pos % 16)  # the checksum byte ends a 16-byte row
        self._left = self._end + 1 - pos
        self._state = _PAD

    def _done(self):
        self.size = self._end + 1 + (HASH_SIZE if self.hash_appended else 0)
        self._state = _TRAIL

    def finish(self):
        """The whole file has been fed: ImageError if the image is incomplete or the client's
        SHA-256 differs; else self (desc, chip_id, size, sha256 filled in)."""
        if self.error is not None:
            raise self.error
        if self._state != _TRAIL:
            self._fail("truncated", "the image ends early (%d bytes)" % self.received)
        if self._file_hash is not None:
            got = self._file_hash.digest()
            self.sha256 = "".join(["%02x" % c for c in got])
            if got != self.want_sha256:
                self._fail("sha256", "the file's SHA-256 is not the one given")
        return self
