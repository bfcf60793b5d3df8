# Fake of the port's CMakeLists.txt, the part a board file meets: run as
# `cmake -D MICROPY_BOARD_DIR=... -D BUILD=... -P project.cmake` from ports/esp32 (so
# CMAKE_CURRENT_SOURCE_DIR is ports/esp32, as when the real CMakeLists.txt includes the board).
include(${MICROPY_BOARD_DIR}/mpconfigboard.cmake)
if(MICROPY_FROZEN_MANIFEST STREQUAL "")
    message(FATAL_ERROR "fake port: the board set no MICROPY_FROZEN_MANIFEST")
endif()
file(WRITE ${BUILD}/sdkconfig.combined "")
foreach(f ${SDKCONFIG_DEFAULTS})
    file(READ ${f} contents)
    file(APPEND ${BUILD}/sdkconfig.combined "${contents}")
endforeach()
string(REPLACE ";" "\n" files "${SDKCONFIG_DEFAULTS}")
file(WRITE ${BUILD}/sdkconfig.files "${files}\n")
file(WRITE ${BUILD}/idf_target "${IDF_TARGET}\n")
file(WRITE ${BUILD}/frozen_manifest "${MICROPY_FROZEN_MANIFEST}\n")
