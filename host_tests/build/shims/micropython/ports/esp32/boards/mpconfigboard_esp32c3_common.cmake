# Fake upstream shared C3 settings.
set(IDF_TARGET esp32c3)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.riscv
    boards/sdkconfig.ble
    boards/sdkconfig.c3
)
