# Board glue for Ethernet: network.LAN from the settings' "lan" section (nostall/lan.py checked
# it). Loaded by board.py only when the settings have one, so a Wi-Fi board's heap does not hold
# it; with board.py, the only modules that import network and machine.

import asyncio
import machine
import network
from nostall.settings import SettingsError

_POLL_MS = 100  # how often the link (and DHCP) is checked while coming up
_SPI_BAUD = 20_000_000  # an SPI Ethernet chip's clock, when "lan": {"spi": {"baudrate": ...}} does not say


async def up(c, settings_path):
    """Bring up the interface c (nostall.lan.check's dict) describes; (the LAN object, its IP)
    once it has an address. SettingsError when the chip refuses the PHY or a pin."""
    try:
        # getattr: the stubs' LAN has active() only; the port's has the NIC methods used below
        lan = getattr(network, "LAN")(**_args(c))
        lan.active(True)
    except (ValueError, TypeError, OSError) as e:  # a pin or a PHY this chip does not have
        raise SettingsError('Ethernet %s refused (%r): check "lan" in %s (an RMII PHY needs an ESP32; the C3 takes '
                            'SPI ones)' % (c["phy"], e, settings_path))
    if c["ipv4"] is not None:
        lan.ipconfig(dhcp4=False)
        if c["gateway"] is not None:
            lan.ipconfig(addr4=c["ipv4"], gw4=c["gateway"])
        else:
            lan.ipconfig(addr4=c["ipv4"])
    if c["dns"] is not None:
        network.ipconfig(dns=c["dns"])
    told = False
    while not lan.isconnected():  # the link, then DHCP's answer (a static address: at once)
        if not told:
            print("nostall: Ethernet (%s): waiting for the link%s" % (c["phy"], "" if c["ipv4"] else " and DHCP"))
            told = True
        await asyncio.sleep_ms(_POLL_MS)
    ip = lan.ipconfig("addr4")[0]
    print("nostall: Ethernet (%s) up, IP %s" % (c["phy"], ip))
    return lan, ip


def _args(c):
    # network.LAN's arguments as the esp32 port takes them: pins as Pin objects, an SPI bus for SPI PHYs
    Pin = machine.Pin
    kw = {"phy_type": getattr(network, "PHY_" + c["phy"]), "phy_addr": c["phy_addr"]}
    for k in ("mdc", "mdio", "power", "ref_clk", "cs", "int"):
        if c[k] is not None:
            kw[k] = Pin(c[k])
    if c["ref_clk_mode"] is not None:
        kw["ref_clk_mode"] = Pin.OUT if c["ref_clk_mode"] == "out" else Pin.IN
    spi = c["spi"]
    if spi is not None:
        kw["spi"] = machine.SPI(spi["id"] if spi["id"] is not None else 1, baudrate=spi["baudrate"] or _SPI_BAUD,
                                sck=Pin(spi["sck"]), mosi=Pin(spi["mosi"]), miso=Pin(spi["miso"]))
    return kw
