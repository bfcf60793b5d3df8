"""CPython's stand-in for MicroPython's `micropython` module, for the firmware modules the unit
tests import there: its code emitters' decorators leave a function as it is (on a board and on
the unix port the compiler turns @micropython.native into machine code), const() is the value."""


def native(f):
    return f


def viper(f):
    return f


def const(x):
    return x
