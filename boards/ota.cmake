# Over-the-air updates for both boards, the way MicroPython's ESP32_GENERIC OTA variant does it
# (mpconfigvariant_OTA.cmake: its sdkconfig.ota appended to SDKCONFIG_DEFAULTS), with this
# project's partition table instead of upstream's partitions-4MiB-ota.csv (docs/ota-partitions.md).
#
# sdkconfig.ota: size optimisation (-Os, silent ESP_RETURN_ON_* checks) so the app fits a slot, and
# a custom partition table. The next file names ours: ESP-IDF takes CONFIG_PARTITION_TABLE_CUSTOM_FILENAME
# relative to ports/esp32 or absolute, and the MicroPython checkout can be anywhere, so the absolute
# path is written at configure time into the build directory (CMAKE_BINARY_DIR: the port's
# CMakeLists.txt include()s the board before project(), with the build directory already set).
# boards/*/mpconfigboard.cmake include this before they append sdkconfig.overlay, which stays last.
get_filename_component(NOSTALL_PARTITIONS_CSV ${CMAKE_CURRENT_LIST_DIR}/partitions-ota.csv ABSOLUTE)
set(NOSTALL_SDKCONFIG_PARTITIONS ${CMAKE_BINARY_DIR}/sdkconfig.partitions)
file(WRITE ${NOSTALL_SDKCONFIG_PARTITIONS}
    "\n# written by boards/ota.cmake: this project's OTA partition table\n"
    "CONFIG_PARTITION_TABLE_CUSTOM=y\n"
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${NOSTALL_PARTITIONS_CSV}\"\n")
list(APPEND SDKCONFIG_DEFAULTS
    boards/ESP32_GENERIC/sdkconfig.ota
    ${NOSTALL_SDKCONFIG_PARTITIONS}
)
