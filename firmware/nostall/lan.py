# The "lan" section of the settings file: Ethernet instead of Wi-Fi, checked at start-up (loaded
# only when the settings have one: a Wi-Fi board's heap does not hold this code). board.py brings
# the interface up from what check() returns.

from nostall.settings import SettingsError, _get

# Ethernet: the PHYs the ESP32 port's network.LAN knows (network.PHY_<name>). RMII ones take a
# PHY address and the MDC/MDIO pins (ESP32 only: the C3 has no EMAC); SPI ones (any chip, the C3
# too) an SPI bus and the CS and INT pins; OPENETH is QEMU's Ethernet model.
LAN_RMII = ("LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041", "KSZ8081")
LAN_SPI = ("W5500", "DM9051", "KSZ8851SNL")
LAN_PHYS = LAN_RMII + LAN_SPI + ("OPENETH",)
_LAN_KEYS = ("phy", "phy_addr", "mdc", "mdio", "power", "ref_clk", "ref_clk_mode", "spi", "cs", "int",
             "ipv4", "gateway", "dns")
_SPI_KEYS = ("id", "sck", "mosi", "miso", "baudrate")


def check(lan):
    """The "lan" settings object, checked: a dict with every key (None where unset); SettingsError
    with a one-line fix otherwise."""
    if not isinstance(lan, dict):
        raise SettingsError('"lan" must be an object: {"phy": "LAN8720", ...} (see README, "Ethernet instead of Wi-Fi")')
    for k in lan:
        if k not in _LAN_KEYS:
            raise SettingsError("unknown lan setting %r; known: %s" % (k, ", ".join(_LAN_KEYS)))
    phy = lan.get("phy")
    if phy not in LAN_PHYS:
        raise SettingsError("lan phy must be one of %s, got %r" % (", ".join(LAN_PHYS), phy))
    out = {"phy": phy}  # type: dict
    for k in ("phy_addr", "mdc", "mdio", "power", "ref_clk", "cs", "int"):
        out[k] = _get(lan, k, int, None)
    mode = lan.get("ref_clk_mode")
    if mode not in (None, "in", "out"):
        raise SettingsError('lan ref_clk_mode must be "in" or "out" (the ESP32 gives the RMII clock: "out"), got %r' % (mode,))
    out["ref_clk_mode"] = mode
    spi = lan.get("spi")
    if phy in LAN_SPI:
        if not isinstance(spi, dict) or any(k not in _SPI_KEYS for k in spi) or out["cs"] is None:
            raise SettingsError('lan phy %s is on SPI: set "spi": {"id": 1, "sck": ..., "mosi": ..., "miso": ...} and "cs" '
                                '(and "int")' % phy)
        out["spi"] = {k: _get(spi, k, int, None) for k in _SPI_KEYS}
    elif spi is not None:
        raise SettingsError("lan phy %s is not on SPI: remove \"spi\"" % phy)
    else:
        out["spi"] = None
    if phy in LAN_RMII and (out["mdc"] is None or out["mdio"] is None):
        raise SettingsError('lan phy %s needs its "mdc" and "mdio" pins (and "phy_addr")' % phy)
    if out["phy_addr"] is None:  # the port requires one; QEMU's model answers at 1
        out["phy_addr"] = 1 if phy == "OPENETH" else 0
    ipv4 = _get(lan, "ipv4", str, None)
    if ipv4 is not None and not _is_cidr(ipv4):
        raise SettingsError('lan ipv4 must be an address with its prefix, like "192.168.1.50/24" (or unset: DHCP), got %r' % ipv4)
    out["ipv4"] = ipv4
    for k in ("gateway", "dns"):
        v = _get(lan, k, str, None)
        if v is not None and not _is_ip(v):
            raise SettingsError("lan %s must be an IPv4 address, got %r" % (k, v))
        out[k] = v
    return out


def _is_ip(s):
    parts = s.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)


def _is_cidr(s):
    ip, _, bits = s.partition("/")
    return _is_ip(ip) and bits.isdigit() and 0 < int(bits) <= 32
