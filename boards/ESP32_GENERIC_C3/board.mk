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
# boards/partitions-ota.csv, FLASH_VFS_OFFSET in mk/build.mk, to the end of the 4 MB flash).
BOARD_QEMU := qemu-system-riscv32
BOARD_QEMU_PKG := qemu-riscv32
BOARD_QEMU_FLASH := 4MB
BOARD_QEMU_FS_OFFSET := $(FLASH_VFS_OFFSET)
BOARD_QEMU_FS_SIZE := $(FLASH_VFS_SIZE_4MB)
