# Fake of the port's CMakeLists.txt, the part a board file meets: run as
# `cmake -D MICROPY_BOARD_DIR=... -D BUILD=... -P project.cmake` from ports/esp32 (so
# CMAKE_CURRENT_SOURCE_DIR is ports/esp32, as when the real CMakeLists.txt includes the board).
# As the real one: the variant's file, in the board's directory, after the board's own.
# The real one runs in the build directory (idf.py -B): CMAKE_BINARY_DIR is BUILD when the board
# file is include()d (script mode would make it the current directory).
set(CMAKE_BINARY_DIR ${BUILD})
if(MICROPY_BOARD_VARIANT AND NOT EXISTS ${MICROPY_BOARD_DIR}/mpconfigvariant_${MICROPY_BOARD_VARIANT}.cmake)
    message(FATAL_ERROR "Invalid MICROPY_BOARD_VARIANT specified: ${MICROPY_BOARD_VARIANT}")
endif()
include(${MICROPY_BOARD_DIR}/mpconfigboard.cmake)
if(MICROPY_BOARD_VARIANT)
    include(${MICROPY_BOARD_DIR}/mpconfigvariant_${MICROPY_BOARD_VARIANT}.cmake)
endif()
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
