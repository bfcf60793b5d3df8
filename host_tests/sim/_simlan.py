"""The sim board's fake of the ESP32 port's network.LAN (Ethernet) and machine.SPI (the bus of an
SPI Ethernet chip), loaded on first use: after
MicroPython's ports/esp32/network_lan.c (phy_addr required, an SPI PHY needs spi and cs, no RMII
PHY on a chip without an EMAC: OSError, one object per board) and network_common.c's ipconfig. The link
comes up LINK_MS after active(True); DHCP answers DHCP_MS later with the sim's loopback address,
a static address (ipconfig(dhcp4=False) then addr4=) holds at once. MicroPython only."""

import time

import _simlink
import _simwlan
import machine
import network

LINK_MS = 50
DHCP_MS = 100
_SPI_PHYS = (100, 101, 102)  # KSZ8851SNL, DM9051, W5500
_UNSET = object()


class LAN:
    _obj = None

    def __new__(cls, id=0, *, phy_type=_UNSET, phy_addr=_UNSET, ref_clk_mode=None, mdc=None, mdio=None,
                power=None, ref_clk=None, spi=None, cs=None, int=None):
        if cls._obj is not None:
            return cls._obj
        if phy_type is _UNSET or phy_addr is _UNSET:
            raise TypeError("'%s' argument required" % ("phy_type" if phy_type is _UNSET else "phy_addr"))
        if phy_addr < 0 or phy_addr > 0x1F:
            raise ValueError("invalid phy address")
        if phy_type in _SPI_PHYS:
            if spi is None or cs is None:
                raise ValueError("invalid SPI configuration")
        elif phy_type != network.PHY_OPENETH:
            if _simlink.CHIP != "esp32":  # RMII needs the ESP32's EMAC (as the C3 in QEMU says)
                raise OSError("esp_eth_driver_install failed with invalid argument")
            if mdc is None or mdio is None:
                raise ValueError("mdc and mdio must be specified")
        o = object.__new__(cls)
        o.phy = phy_type
        o._active = False
        o._up_at = None
        o._dhcp = True
        o._static = None
        cls._obj = o
        _simlink.event("lan", phy_type)
        return o

    def active(self, *state):
        if state:
            self._active = bool(state[0])
            self._up_at = time.ticks_add(time.ticks_ms(), LINK_MS) if self._active else None
        return self._active

    def _phase(self):
        # 0 no link, 1 link without an address, 2 with one
        if self._up_at is None or time.ticks_diff(time.ticks_ms(), self._up_at) < 0:
            return 0
        if not self._dhcp:
            return 2 if self._static is not None else 1
        return 2 if time.ticks_diff(time.ticks_ms(), self._up_at) >= DHCP_MS else 1

    def isconnected(self):
        return self._phase() == 2

    def status(self):
        return (network.ETH_STOPPED, network.ETH_CONNECTED, network.ETH_GOT_IP)[self._phase()] if self._active \
            else network.ETH_INITIALIZED

    def ipconfig(self, *args, **kw):
        if not kw:
            if len(args) != 1:
                raise TypeError("must query one param")
            k = args[0]
            a = self.ifconfig()
            if k == "addr4":
                return (a[0], a[1])
            if k == "gw4":
                return a[2]
            if k == "dhcp4":
                return self._dhcp
            raise ValueError("unexpected key")
        if args:
            raise TypeError("can't specify pos and kw args")
        for k, v in kw.items():
            if k == "dhcp4":
                self._dhcp = bool(v)
            elif k == "addr4":
                cur = self._static or ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
                self._static = _simwlan.addr4(v, cur[1]) + cur[2:]  # as WLAN's: the port's one ipconfig
                self._dhcp = False
            elif k == "gw4":
                s = self._static or ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
                self._static = (s[0], s[1], v, s[3])
            else:
                raise ValueError("unexpected key")

    def ifconfig(self, *config):
        if config:
            self._static = tuple(config[0])
            self._dhcp = False
            return None
        if self._phase() < 2:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return self._static if not self._dhcp else ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")


class SPI:
    """The hardware SPI bus as network.LAN takes it for an SPI Ethernet chip (W5500, DM9051,
    KSZ8851SNL): the port's machine_hw_spi.c checks the bus id and the pins; nothing is sent."""

    CONTROLLER = 0
    MSB = 0
    LSB = 1

    def __init__(self, id, baudrate=500000, *, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None, miso=None):
        if id not in ((1,) if _simlink.CHIP != "esp32" else (1, 2)):  # SPI2 (and SPI3 on the ESP32): id 1 (and 2)
            raise ValueError("SPI(%s) doesn't exist" % id)
        self.pins = tuple(p if p is None or isinstance(p, machine.Pin) else machine.Pin(p) for p in (sck, mosi, miso))
        self.baudrate = baudrate
