# `make qemu-image`: MicroPython's QEMU variant of ESP32_GENERIC_C3 (QEMU's OpenCores Ethernet,
# CONFIG_ETH_USE_OPENETH=y; upstream after v1.28.0), then sdkconfig.overlay moved back to the end
# of the list, so its settings still win. The port include()s this file after mpconfigboard.cmake,
# with CMAKE_CURRENT_SOURCE_DIR its ports/esp32.
include(${CMAKE_CURRENT_SOURCE_DIR}/boards/ESP32_GENERIC_C3/mpconfigvariant_QEMU.cmake)
list(REMOVE_ITEM SDKCONFIG_DEFAULTS ${NOSTALL_SDKCONFIG_OVERLAY})
list(APPEND SDKCONFIG_DEFAULTS ${NOSTALL_SDKCONFIG_OVERLAY})
