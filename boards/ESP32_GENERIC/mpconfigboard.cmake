# nostall on a generic ESP32 module (4 MiB flash or more, no SPIRAM needed): MicroPython's own
# ESP32_GENERIC board, plus this project's sdkconfig.overlay and the firmware frozen in.
# Upstream's variants (SPIRAM, D2WD, ...) are not offered here: BOARD_VARIANT is not supported; OTA is
# always on (boards/ota.cmake), with this project's partition table.
#
# The port's CMakeLists.txt include()s this file, so CMAKE_CURRENT_SOURCE_DIR is ports/esp32 of the
# MicroPython checkout; the upstream file names its sdkconfig files relative to that directory.
include(${CMAKE_CURRENT_SOURCE_DIR}/boards/ESP32_GENERIC/mpconfigboard.cmake)

# OTA: upstream's sdkconfig.ota and this project's partition table (boards/partitions-ota.csv).
include(${CMAKE_CURRENT_LIST_DIR}/../ota.cmake)

# Last in the list, so its settings win over sdkconfig.base and the board's files.
get_filename_component(NOSTALL_SDKCONFIG_OVERLAY ${CMAKE_CURRENT_LIST_DIR}/../../sdkconfig.overlay ABSOLUTE)
list(APPEND SDKCONFIG_DEFAULTS ${NOSTALL_SDKCONFIG_OVERLAY})

set(MICROPY_FROZEN_MANIFEST ${CMAKE_CURRENT_LIST_DIR}/manifest.py)
