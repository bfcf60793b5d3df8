# The app image checker (firmware/nostall/appimage.py): small images built here, fed whole, byte by
# byte and in random splits; each refusal at the byte it can first be seen; and the real C3 app
# image of ../shared/qemu-c3 (micropython-ota-app.bin; its corrupted, truncated and ESP32-marked
# variants; the merged firmware.bin) streamed from the file. Runs on CPython and on MicroPython
# (where the real image is read from the host's file, in pieces, as an upload arrives).

import hashlib
import os
import struct
import sys

from unitcheck import Lcg, raises, splits

from nostall.appimage import AppImage, ImageError, _xor_fold

C3, ESP32 = 5, 0


def desc(version="1.2.3", project="nostall"):
    d = struct.pack("<II8x32s32s16s16s32s32s", 0xABCD5432, 7, version.encode(), project.encode(), b"12:00:00",
                    b"Jan  1 2026", b"v5.3", b"\x11" * 32)
    return d + b"\x00" * (256 - len(d))


def image(chip=C3, segs=None, hashed=1, first=None):
    """A valid image (harness/appimage_build.py makes them for the host; this one runs on MicroPython too)."""
    if segs is None:
        segs = [bytes([(i * 7 + 3) & 0xFF for i in range(1000)])]
    segs = [desc() if first is None else first] + segs
    body = struct.pack("<BBBBIB3sHBHH4sB", 0xE9, len(segs), 2, 0x2F, 0x403803C4, 0xEE, b"\x00\x00\x00", chip, 3, 3,
                       199, b"\x00" * 4, hashed)
    c = 0xEF
    for s in segs:
        body += struct.pack("<II", 0x3C0C0020, len(s)) + s
        for b in s:
            c ^= b
    body += b"\x00" * (15 - len(body) % 16) + bytes([c])
    return body + hashlib.sha256(body).digest() if hashed else body




def refused_at(data, reason, **kw):
    """Feed data byte by byte: the 1-based count of bytes fed when it was refused for reason."""
    img = AppImage(**kw)
    for i in range(len(data)):
        try:
            img.feed(data[i : i + 1])
        except ImageError as e:
            assert e.reason == reason, (e.reason, str(e))
            with raises(ImageError, str(e)):  # it stays refused
                img.feed(b"x")
            with raises(ImageError, str(e)):
                img.finish()
            return i + 1
    try:
        img.finish()
    except ImageError as e:
        assert e.reason == reason, (e.reason, str(e))
        return len(data) + 1
    raise AssertionError("not refused (%s)" % reason)


def check(pieces, **kw):
    img = AppImage(**kw)
    for p in pieces:
        img.feed(p)
    return img.finish()


def test_valid_image_whole_byte_by_byte_and_split():
    rnd = Lcg(3)
    data = image()
    for how in ("whole", "bytes", "split", "split", "split"):
        img = check(splits(data, how, rnd), chip_id=C3, sha256=hashlib.sha256(data).digest())
        assert img.size == len(data) and img.received == len(data)
        assert (img.chip_id, img.segments, img.hash_appended, img.min_rev_full, img.max_rev_full) == (C3, 2, True, 3, 199)
        assert img.entry == 0x403803C4
        d = img.desc
        assert (d["version"], d["project_name"], d["time"], d["date"], d["idf_ver"], d["secure_version"]) == (
            "1.2.3", "nostall", "12:00:00", "Jan  1 2026", "v5.3", 7)
        assert d["elf_sha256"] == "11" * 32
        assert img.sha256 == "".join(["%02x" % c for c in hashlib.sha256(data).digest()])
    assert check([data]).chip_id == C3  # no chip asked for: any


def test_header_refusals_come_at_the_24th_byte():
    good = image()
    bad_magic = b"\xe8" + good[1:]
    assert refused_at(bad_magic, "magic", chip_id=C3) == 24
    assert refused_at(image(chip=ESP32), "chip", chip_id=C3) == 24
    assert refused_at(good, "chip", chip_id=ESP32) == 24
    with raises(ImageError, "an image for esp32c3, this board is esp32"):
        AppImage(chip_id=ESP32).feed(good)
    assert refused_at(good[:1] + b"\x00" + good[2:], "segments") == 24
    assert refused_at(good[:1] + b"\x11" + good[2:], "segments") == 24  # 17 > ESP_IMAGE_MAX_SEGMENTS
    assert refused_at(good[:23] + b"\x02" + good[24:], "header") == 24
    assert refused_at(image(hashed=0), "no_hash") == 24
    assert check([image(hashed=0)], require_hash=False).size == len(image(hashed=0))


def test_segment_refusals_at_their_header():
    good = image()
    big = good[:28] + struct.pack("<I", 0x200000) + good[32:]
    assert refused_at(big, "too_big", max_size=0x180000) == 32
    # fits only without the checksum byte and the hash
    size = len(good)
    assert refused_at(good, "too_big", max_size=size - 1) == 24 + 8 + 256 + 8
    assert check([good], max_size=size).size == size
    odd = good[:28] + struct.pack("<I", 257) + good[32:]
    assert refused_at(odd, "segment") == 32
    short = image(first=b"\x00" * 64)
    assert refused_at(short, "not_app") == 32


def test_no_app_description_or_a_bootloader_refused_at_the_first_segment():
    boot = image(first=b"\x50\x01\x00\x00" + b"\x00" * 252)  # esp_bootloader_desc_t: a merged firmware.bin
    assert refused_at(boot, "bootloader") == 24 + 8 + 4  # at its first word
    plain = image(first=b"\x00" * 256)
    assert refused_at(plain, "not_app") == 24 + 8 + 4
    img = check([plain], require_desc=False)
    assert img.desc is None and img.size == len(plain)


def test_corruption_is_caught_by_the_checksum_or_the_hash():
    data = image()
    end = len(data) - 32  # the checksum byte is data[end - 1]
    flip = bytearray(data)
    flip[500] ^= 0x01
    assert refused_at(bytes(flip), "checksum") == end
    # two flips that cancel in the XOR: only the hash sees them
    twice = bytearray(data)
    twice[500] ^= 0x01
    twice[600] ^= 0x01
    assert refused_at(bytes(twice), "hash") == len(data)
    header = bytearray(data)
    header[4] ^= 0x01  # the entry address: in no checksum, in the hash
    assert refused_at(bytes(header), "hash") == len(data)
    pad = bytearray(data)
    pad[end - 2] ^= 0x01  # the padding before the checksum byte
    assert refused_at(bytes(pad), "hash") == len(data)
    h = bytearray(data)
    h[-1] ^= 0x80
    assert refused_at(bytes(h), "hash") == len(data)
    cs = bytearray(data)
    cs[end - 1] ^= 0x01
    with raises(ImageError, "checksum"):
        check([bytes(cs)])


def test_truncated_anywhere_is_refused_by_finish():
    data = image()
    for cut in (0, 1, 23, 24, 31, 32, 100, 288, len(data) - 33, len(data) - 32, len(data) - 1):
        with raises(ImageError, "ends early") as r:
            check([data[:cut]])
        assert r.value.reason == "truncated"


def test_trailing_bytes():
    data = image()
    assert refused_at(data + b"\xff", "trailing") == len(data) + 1
    assert check([data + b"\xff" * 100], allow_padding=True).size == len(data)
    rnd = Lcg(5)
    assert check(splits(data + b"\xff" * 4096, "split", rnd, 300), allow_padding=True).size == len(data)
    assert refused_at(data + b"\xff\x00", "trailing", allow_padding=True) == len(data) + 2
    assert refused_at(data + b"\xff" * 40, "too_big", allow_padding=True, max_size=len(data) + 32) == len(data) + 33


def test_the_clients_sha256():
    data = image()
    digest = hashlib.sha256(data).digest()
    hexd = "".join(["%02x" % c for c in digest])
    assert check([data], sha256=hexd).sha256 == hexd
    assert check([data], sha256=hexd.upper()).sha256 == hexd
    with raises(ImageError, "SHA-256") as r:
        check([data], sha256="00" * 32)
    assert r.value.reason == "sha256"
    with raises(ImageError, "SHA-256"):  # the whole file: padding the client sent is in it
        check([data + b"\xff"], sha256=digest, allow_padding=True)
    with raises(ValueError):
        AppImage(sha256="abc")


def test_xor_fold_is_the_xor_of_every_byte():
    rnd = Lcg(11)
    for n in (1, 2, 3, 7, 8, 9, 255, 256, 257, 4095, 4096, 4097):
        data = bytes([rnd.randint(0, 255) for _ in range(n)])
        x = 0
        for b in data:
            x ^= b
        assert _xor_fold(data) == x, n
        assert _xor_fold(memoryview(data)) == x, n


def test_segments_of_many_sizes_and_a_long_one():
    rnd = Lcg(21)
    segs = [bytes([(i * 13) & 0xFF for i in range(n)]) for n in (0, 4, 8, 12, 4096, 10000)]
    data = image(segs=segs)
    for how in ("whole", "split"):
        img = check(splits(data, how, rnd, 5000))
        assert img.segments == 7 and img.size == len(data)
    img = check(splits(data, "split", rnd))
    assert img.size == len(data)


# The real image: the OTA variant's micropython.bin of ../shared/qemu-c3 (README "OTA variant")

def _qemu_dir():
    d = os.getenv("QEMU_C3_DIR")
    if d:
        return d
    here = __file__.rpartition("/")[0] or "."
    if not here.startswith("/"):
        here = os.getcwd() + "/" + here
    return here + "/../../../shared/qemu-c3"


def _real(name="micropython-ota-app.bin"):
    path = _qemu_dir() + "/" + name
    try:
        os.stat(path)
    except OSError:
        try:
            import pytest
        except ImportError:  # MicroPython: nothing to check here
            return None
        pytest.skip("no %s (set QEMU_C3_DIR to a qemu-c3 package)" % path)
    return path


def stream(path, sizes, patch=None):
    """The file's bytes in pieces whose sizes cycle through sizes (a callable: one per piece);
    patch: {offset: bytes} replaced on the way."""
    with open(path, "rb") as f:
        pos = 0
        while True:
            piece = f.read(sizes())
            if not piece:
                return
            if patch:
                piece = bytearray(piece)
                for off, rep in patch.items():
                    for j in range(len(rep)):
                        if pos <= off + j < pos + len(piece):
                            piece[off + j - pos] = rep[j]
                piece = bytes(piece)
            yield piece
            pos += len(piece)


def feed_file(path, sizes, patch=None, **kw):
    img = AppImage(**kw)
    n = 0
    try:
        for piece in stream(path, sizes, patch):
            img.feed(piece)
            n += len(piece)
        img.finish()
    except ImageError as e:
        return e.reason, n
    return img, n


def _header_bytewise_then(n):
    state = [0]

    def sizes():
        state[0] += 1
        return 1 if state[0] <= 400 else n

    return sizes


def _file_sha256(path, patch=None):
    h = hashlib.sha256()
    for piece in stream(path, lambda: 4096, patch):
        h.update(piece)
    return h.digest()


def test_the_real_c3_image():
    path = _real()
    if path is None:
        return
    size = os.stat(path)[6]
    digest = _file_sha256(path)
    rnd = Lcg(9)
    whole = 65536 if sys.implementation.name == "micropython" else size  # the unix port's heap: 2 MB
    for sizes in (lambda: whole, _header_bytewise_then(4096), lambda: rnd.randint(1, 5000)):
        img, n = feed_file(path, sizes, chip_id=C3, sha256=digest)
        assert n == size == img.size == 1007280, (n, size)
        assert (img.chip_id, img.segments, img.hash_appended, img.checksum) == (C3, 6, True, 0x4E)
        assert (img.min_rev_full, img.max_rev_full) == (3, 199)
        d = img.desc
        # this build (an offline IDF v5.3 build) leaves version and project name empty
        assert (d["version"], d["project_name"], d["idf_ver"], d["date"]) == ("", "", "HEAD-HASH-NOTFOUND",
                                                                             "Dec  4 2026")
    assert feed_file(path, lambda: 4096, chip_id=ESP32) == ("chip", 0)  # refused in the first piece
    assert feed_file(path, _header_bytewise_then(4096), chip_id=ESP32) == ("chip", 23)


def test_the_real_image_corrupted_truncated_or_padded():
    path = _real()
    if path is None:
        return
    size = os.stat(path)[6]
    mid = size // 2
    flipped = {mid: bytes([0xA5] * 16)}  # 16 bytes in the middle, as the QEMU check did
    reason, n = feed_file(path, lambda: 4096, flipped, chip_id=C3)
    assert reason in ("checksum", "hash") and n >= mid, (reason, n)
    assert feed_file(path, lambda: 4096, {size - 1: b"\x00"}, chip_id=C3)[0] == "hash"  # the hash's last byte
    assert feed_file(path, lambda: 4096, {size - 33: b"\x00"}, chip_id=C3)[0] == "checksum"
    assert feed_file(path, lambda: 4096, {4: b"\x00"}, chip_id=C3)[0] == "hash"  # the entry address

    class Cut:  # the file without its last bytes: fed up to there, then finish()
        def __init__(self, keep):
            self.left = keep

        def __call__(self):
            n = min(4096, self.left)
            self.left -= n
            return n

    for keep in (size - 1, size - 32, size - 33, mid, 24):
        assert feed_file(path, Cut(keep), chip_id=C3) == ("truncated", keep), keep


def test_the_real_image_marked_for_the_esp32():
    # The ESP32's image: chip id 0 in the header; the checksum (of the segments' data) stays, the
    # appended SHA-256 is computed again.
    path = _real()
    if path is None:
        return
    size = os.stat(path)[6]
    chip0 = {12: b"\x00\x00"}
    h = hashlib.sha256()  # of the bytes before the appended hash
    pos = 0
    for piece in stream(path, lambda: 4096, chip0):
        h.update(piece[: max(0, size - 32 - pos)])
        pos += len(piece)
    patch = {12: b"\x00\x00", size - 32: h.digest()}
    img, n = feed_file(path, lambda: 4096, patch, chip_id=ESP32)
    assert (img.chip_id, img.size) == (ESP32, size)
    assert feed_file(path, _header_bytewise_then(4096), patch, chip_id=C3) == ("chip", 23)
    assert feed_file(path, lambda: 4096, {12: b"\x00\x00"}, chip_id=ESP32)[0] == "hash"  # not re-sealed


def test_the_merged_firmware_bin_is_refused_early():
    for name in ("firmware.bin", "firmware-ota.bin"):
        path = _real(name)
        if path is None:
            return
        # its bootloader comes first (0xE9, chip 5): refused at its first segment
        assert feed_file(path, _header_bytewise_then(4096), chip_id=C3) == ("bootloader", 24 + 8 + 3)


def test_the_host_builder_agrees_with_the_checker_and_esptool():
    # harness/appimage_build.py (CPython; the sim tests' images) against this checker and, where the
    # build venv's esptool is installed, esptool's own image parser
    try:
        from harness import appimage_build as B
    except ImportError:  # MicroPython: the harness is not on its path
        return
    images = [(B.build(version="3.1", size=n, chip_id=chip), chip) for n in (300, 5000, 70001) for chip in (C3, ESP32)]
    for img, chip in images:
        got = check([img], chip_id=chip)
        assert (got.size, got.desc["version"], got.chip_id) == (len(img), "3.1", chip)
    assert check([B.reseal(images[0][0], hash_appended=False)], require_hash=False).hash_appended is False
    with raises(ImageError, "corrupt"):
        check([B.corrupt(images[2][0])])
    path = _real()
    if path is not None:
        with open(path, "rb") as f:
            real = f.read()
        assert B.reseal(real) == real  # the builder seals exactly as IDF's build did
    try:
        from esptool.bin_image import LoadFirmwareImage
    except ImportError:
        return
    for img, chip in images:
        e = LoadFirmwareImage({C3: "esp32c3", ESP32: "esp32"}[chip], img)
        assert (e.checksum, e.stored_digest, e.chip_id) == (e.calculate_checksum(), e.calc_digest, chip)
