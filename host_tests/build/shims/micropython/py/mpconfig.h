// Fake: only the version of a MicroPython v1.28.0 checkout.
#define MICROPY_VERSION_MAJOR 1
#define MICROPY_VERSION_MINOR 28
#define MICROPY_VERSION_MICRO 0
#define MICROPY_VERSION_PRERELEASE 0
