# Files on the board's flash over HTTP: a data folder the API fills and empties, served back as
# static files. Uploads stream (bodystream.py): a file of any size the flash can hold arrives
# through one block buffer, written under a temporary name and renamed once complete, so a cut
# upload (the client gone, a timeout, a reset) never leaves a partial file in place. Paths stay
# inside the folder; names starting with "." are not served or written (the temporary ones are).
#
#     PUT    /api/files/<path>   the body is the file (Content-Length or chunked); 201 or 204
#     POST   /api/files          a multipart/form-data form: each file part saved by its name; 201
#     GET    /api/files          what is there: [{"name", "size"}], up to LIST_MAX entries
#     GET    /files/<path>       the file (static.py: ETag, .gz twins, 304)
#     DELETE /api/files/<path>   204, or 404
#
# The changing ones are behind the API token (App.admit), checked before any body is read.
# App.files() registers the routes; this module is imported by the first request to one.

import os

from nostall.flash import free, is_dir, mkdirs
from nostall.request import HTTPError
from nostall.static import _dot_segment, send_file

BLOCK_BYTES = 1024  # an upload goes through one buffer this big (littlefs caches its own writes)
RESERVE_BYTES = 8192  # kept free: littlefs needs spare blocks to write at all (copy on write)
LIST_MAX = 200  # entries GET /api/files names at most (a bounded answer)
NAME_MAX = 128  # bytes in a path under the folder
_TMP = ".upload-"  # + a number: a temporary file, removed when its upload does not complete
_ENOSPC = 28
_count = [0]  # temporary files made: each upload's own name
_ready = []  # the roots made and cleaned of what a reset left


def _root(root):
    # the folder, at its first use after start-up: made if missing, and emptied of temporary
    # files an upload cut short by a reset left
    if root not in _ready:
        _in_the_way(mkdirs(root))
        for name in _listdir(root):
            if name.startswith(_TMP):
                _remove(root + "/" + name)
        _ready.append(root)
    return root


def entry(root, req, path):
    # /api/files/<path>: one route for both its methods (App.files)
    return put(root, req, path) if req.method == "PUT" else delete(root, req, path)


def folder(root, req):
    # /api/files: the list, or a form of files
    return post(root, req) if req.method == "POST" else listing(root, req)


async def put(root, req, path):
    full = _full(_root(root), path)
    existed = _size(full) is not None
    stream = req.stream
    if stream is not None:
        _room_for(root, stream)
    await _receive(root, full, stream)
    return "", 204 if existed else 201


def listing(root, req):
    out = []
    _walk(_root(root), "", out)
    return {"files": out[:LIST_MAX], "truncated": len(out) > LIST_MAX, "free": _free(root)}


def delete(root, req, path):
    full = _full(_root(root), path)
    if _size(full) is None:
        raise HTTPError(404, "no such file")
    os.remove(full)
    return "", 204


def get(root, req, path):
    _full(root, path)  # the same rules as for writing: no hidden name
    return send_file(root, path, req)


def _full(root, path):
    # root/path for a path the API may name: relative, no "." or ".." segment, no hidden name,
    # no backslash or NUL, not too long
    path = path.strip("/")
    if not path or len(path) > NAME_MAX or "\\" in path or "\0" in path or "//" in path:
        raise HTTPError(400, "bad file name")
    if _dot_segment(path) or path.startswith(".") or "/." in path:
        raise HTTPError(400, "names starting with . are not allowed")
    return root + "/" + path


async def _receive(root, full, src):
    # the body into full, through a temporary file
    tmp = _tmp(root)
    block = bytearray(BLOCK_BYTES)
    mv = memoryview(block)
    try:
        with open(tmp, "wb") as f:
            while src is not None:
                n = await src.readinto(block)
                if not n:
                    break
                _write(f, mv[:n])
        _place(tmp, full)
        tmp = None
    finally:
        if tmp is not None:
            _remove(tmp)


async def post(root, req):
    """A multipart/form-data form (a browser's <input type=file multiple>, FormData): each file
    part saved under its file name in the folder, as it comes; the other fields are ignored."""
    from nostall.multipart import DATA, END, PART, MultipartReader

    stream = req.stream
    if stream is None:
        raise HTTPError(400, "send the files as a multipart/form-data form")
    root = _root(root)
    _room_for(root, stream)
    form = MultipartReader(req.headers.get("content-type", ""))  # MultipartError: its 400/413/415
    block = bytearray(BLOCK_BYTES)
    saved = []
    f = tmp = full = None
    try:
        while True:
            n = await stream.readinto(block)
            if not n:
                form.eof()
                break
            form.feed(block if n == len(block) else block[:n])  # kept by the reader until next() is None
            while True:
                ev = form.next()
                if ev is None:
                    break
                kind, v = ev  # pyright: ignore[reportGeneralTypeIssues] - next() gives (kind, value) or None
                if kind == PART and v.filename:  # pyright: ignore[reportAttributeAccessIssue] - a Part
                    full = _full(root, v.filename.replace("\\", "/").rpartition("/")[2])  # pyright: ignore[reportAttributeAccessIssue]
                    tmp = _tmp(root)
                    f = open(tmp, "wb")
                elif kind == DATA and f is not None:
                    _write(f, v)
                elif kind == END and f is not None:
                    f.close()
                    f = None
                    _place(tmp, full)
                    tmp = None
                    saved.append({"name": full[len(root) + 1 :], "size": _size(full)})
    finally:
        if f is not None:
            f.close()
        if tmp is not None:
            _remove(tmp)
    return {"saved": saved}, 201


def _tmp(root):
    _count[0] += 1
    return "%s/%s%d" % (root, _TMP, _count[0])


def _write(f, data):
    try:
        f.write(data)
    except OSError as e:
        if e.args[0] == _ENOSPC:
            raise HTTPError(507, "not enough space")
        raise


def _place(tmp, full):
    # a complete upload takes its name (over an older file of that name)
    _in_the_way(mkdirs(full.rpartition("/")[0]))
    if is_dir(full):
        raise HTTPError(409, "a folder has that name")
    try:
        os.rename(tmp, full)
    except OSError:  # a file system that will not rename over a file
        _remove(full)
        os.rename(tmp, full)


def _in_the_way(part):
    if part is not None:
        raise HTTPError(409, "a file is in the way of %s" % part)


def _size(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return None if st[0] & 0x4000 else st[6]


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _room_for(root, stream):
    # 507 before the body when its Content-Length is known not to fit (chunked: when a write fails)
    if stream.length is not None:
        free = _free(root)
        if stream.length > free:
            raise HTTPError(507, "not enough space: %d bytes free" % free)


def _free(root):
    return free(root, RESERVE_BYTES)


def _walk(root, rel, out):
    for name in sorted(_listdir(root + rel)):
        if name.startswith(".") or len(out) > LIST_MAX:
            continue
        path = rel + "/" + name
        size = _size(root + path)
        if size is None:
            _walk(root, path, out)
        else:
            out.append({"name": path[1:], "size": size})
