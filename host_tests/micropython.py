"""CPython's stand-in for MicroPython's `micropython` module, for the firmware modules the unit
tests import there: its code emitters' decorators leave a function as it is (on a board and on
the unix port the compiler turns @micropython.native into machine code), const() is the value.
A viper function's ptr8(buf) is the buffer itself here (a builtin, as the name is in viper code):
indexing bytes, bytearray and memoryview gives the same ints as viper's byte pointer."""

import builtins

builtins.ptr8 = lambda buf: buf


def native(f):
    return f


def viper(f):
    return f


def const(x):
    return x
