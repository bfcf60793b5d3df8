# Runs unit test modules on the MicroPython unix port: every test_* function of each module
# named on the command line, then one line "N passed, M failed". host_tests/unit/test_on_micropython.py
# starts it with MICROPYPATH set to this folder, firmware/ and the port's frozen modules.
#
#     micropython host_tests/unit/mp_run.py test_pool test_framing

import sys


def main(names):
    passed = 0
    failed = 0
    for name in names:
        mod = __import__(name)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            try:
                getattr(mod, attr)()
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL %s.%s: %r" % (name, attr, e))
                sys.print_exception(e)
    print("%d passed, %d failed" % (passed, failed))


main(sys.argv[1:])
