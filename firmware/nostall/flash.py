# Folders and space on the board's filesystem, for what writes files as they arrive (files.py,
# appupdate.py): folders made as a path needs them, trees removed, the room left.

import os

_EEXIST = 17


def is_dir(path):
    try:
        return bool(os.stat(path)[0] & 0x4000)
    except OSError:
        return False


def mkdirs(path):
    """Make path's folders as needed; returns the first part that is a file (in the way), or None."""
    part = ""
    for seg in path.strip("/").split("/"):
        part += "/" + seg
        try:
            os.mkdir(part)
        except OSError as e:
            if e.args[0] != _EEXIST:
                raise
        if not is_dir(part):
            return part
    return None


def rmtree(path):
    """Remove path, a file or a folder with all in it; nothing when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if st[0] & 0x4000:
        for name in os.listdir(path):
            rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def free(path, reserve=0):
    """Bytes free on path's filesystem, less reserve."""
    st = os.statvfs(path)
    return max(0, st[0] * st[4] - reserve)  # f_bsize * f_bavail
