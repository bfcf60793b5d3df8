# Fake upstream QEMU variant of ESP32_GENERIC_C3 (upstream master since f71a2316ee, after v1.28.0).
list(APPEND SDKCONFIG_DEFAULTS
    boards/ESP32_GENERIC_C3/sdkconfig.qemu
)

list(APPEND MICROPY_DEF_BOARD
    MICROPY_HW_BOARD_NAME="Generic ESP32C3 module with QEMU"
)
