# Frozen into this board's firmware: what the port freezes for every board (asyncio, ...), then
# this project's firmware/ (see ../manifest_firmware.py).
include("$(PORT_DIR)/boards/manifest.py")
include("../manifest_firmware.py")
