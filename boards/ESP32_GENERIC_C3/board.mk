# What mk/build.mk needs to know about this board.
BOARD_CHIP := esp32c3
# firmware.bin (bootloader + partition table + app, made by the port's makeimg.py) starts at 0x0.
BOARD_FLASH_OFFSET := 0x0
# RISC-V CPU: mpy-cross -march=rv32imc
BOARD_MPY_ARCH := rv32imc
# Stubs of this board's MicroPython API, for `make typecheck`.
BOARD_STUBS := micropython-esp32-esp32-generic-c3-stubs==1.28.0.post4
