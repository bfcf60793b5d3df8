# What mk/build.mk needs to know about this board.
BOARD_CHIP := esp32c3
# firmware.bin (bootloader + partition table + app, made by the port's makeimg.py) starts at 0x0.
BOARD_FLASH_OFFSET := 0x0
# RISC-V CPU: mpy-cross -march=rv32imc
BOARD_MPY_ARCH := rv32imc
# Stubs of this board's MicroPython API, for `make typecheck`.
BOARD_STUBS := micropython-esp32-esp32-generic-c3-stubs==1.28.0.post4
# make qemu-image / make qemu (this board has a QEMU variant: mpconfigvariant_QEMU.cmake): ESP-IDF's
# QEMU for this chip and the idf_tools.py package that installs it; the flash image's size, and
# where the port's filesystem lies in it (main.c puts it after the last partition of
# partitions-4MiBplus.csv, 0x200000, to the end of the flash).
BOARD_QEMU := qemu-system-riscv32
BOARD_QEMU_PKG := qemu-riscv32
BOARD_QEMU_FLASH := 4MB
BOARD_QEMU_FS_OFFSET := 0x200000
BOARD_QEMU_FS_SIZE := 0x200000
