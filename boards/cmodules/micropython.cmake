# This firmware's user C modules: mk/build.mk passes this file to the esp32 port as
# USER_C_MODULES (MicroPython's py/usermod.cmake include()s it).
include(${CMAKE_CURRENT_LIST_DIR}/nostall_tcp/micropython.cmake)
