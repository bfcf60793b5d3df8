# What mk/build.mk needs to know about this board.
BOARD_CHIP := esp32
# firmware.bin (bootloader + partition table + app, made by the port's makeimg.py) starts at the
# ESP32's bootloader offset.
BOARD_FLASH_OFFSET := 0x1000
# Xtensa LX6 CPU with windowed registers: mpy-cross -march=xtensawin
BOARD_MPY_ARCH := xtensawin
# Stubs of this board's MicroPython API, for `make typecheck`.
BOARD_STUBS := micropython-esp32-esp32-generic-stubs==1.28.0.post4
