# Fake upstream ESP32_GENERIC_C3 board: includes a shared file by a path relative to ports/esp32.
include(boards/mpconfigboard_esp32c3_common.cmake)
