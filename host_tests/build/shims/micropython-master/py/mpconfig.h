// Fake: only the version of a MicroPython master checkout after v1.28.0.
#define MICROPY_VERSION_MAJOR 1
#define MICROPY_VERSION_MINOR 29
#define MICROPY_VERSION_MICRO 0
#define MICROPY_VERSION_PRERELEASE 1
