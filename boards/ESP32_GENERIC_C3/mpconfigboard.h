// Upstream's generic ESP32-C3 settings (the port's directory is on the include path), under
// this firmware's name: os.uname().machine and the REPL banner show which firmware is running.
#include "boards/ESP32_GENERIC_C3/mpconfigboard.h"

#undef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME "nostall ESP32C3 module"
