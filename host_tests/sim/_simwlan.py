"""What the sim board's fake network module (network.py) does seldom, loaded on first use:
network.country() and ipconfig(), and WLAN's ifconfig() with a static address, ipconfig(),
scan() and config() beyond pm (after MicroPython v1.28.0 ports/esp32/network_wlan.c and
network_common.c, errors as there). MicroPython only."""

import time

import network
from network import _R, _started

_dns = ["0.0.0.0"]
_country = ["XX"]


def country(code):
    if code is None:
        return _country[0]
    _country[0] = code


def addr4(v, mask):
    # ipconfig(addr4=...)'s value as network_common.c takes it for every interface: "a.b.c.d/bits"
    # (the mask from the bits), "a.b.c.d" (the mask kept) or (address, mask); -> (address, mask)
    if not isinstance(v, str):
        return tuple(v)
    ip, _, bits = v.partition("/")
    if bits:
        m = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
        mask = ".".join([str((m >> s) & 255) for s in (24, 16, 8, 0)])
    return ip, mask


def ipconfig(wlan, args, kw):
    """network.ipconfig() (wlan None: the DNS server) and WLAN.ipconfig()."""
    if not kw:
        if len(args) != 1:
            raise TypeError("must query one param")
        k = args[0]
        if wlan is None and k == "dns":
            return _dns[0]
        if wlan is not None:
            a = wlan._addr()
            if k == "dhcp4" and wlan._if == network.STA_IF:
                return _R.dhcp[1]
            if k == "addr4":
                return (a[0], a[1])
            if k == "gw4":
                return a[2]
        raise ValueError("unexpected key")
    if args:
        raise TypeError("can't specify pos and kw args")
    if wlan is None:
        for k, v in kw.items():
            if k != "dns":
                raise ValueError("unexpected key")
            _dns[0] = v
        return None
    ip, mask, gw, dns = wlan._addr()
    for k, v in kw.items():
        if k == "dhcp4" and wlan._if == network.STA_IF:
            _R.dhcp[1] = bool(v)
        elif k == "addr4":
            ip, mask = addr4(v, mask)
            _R.static[wlan._if] = (ip, mask, gw, dns)
        elif k == "gw4":
            _R.static[wlan._if] = (ip, mask, v, dns)
        else:
            raise ValueError("unexpected key")


def ifconfig(wlan, c):
    if isinstance(c, (tuple, list)):
        if len(c) != 4:
            raise ValueError("requested length 4 but object has length %d" % len(c))
        _R.static[wlan._if] = tuple(c)  # a static address: DHCP off
        if wlan._if == network.STA_IF:
            _R.dhcp[1] = False
    elif wlan._if != network.STA_IF or c != "dhcp":
        raise ValueError("invalid arguments")
    else:
        _R.static[network.STA_IF], _R.dhcp[1] = None, True


def scan():
    if not _R.mode & 1:
        raise OSError("STA must be active")
    _R.catch_up()
    time.sleep_ms(_R.ms("scan_ms", 1500))  # the port's scan blocks, every channel in turn
    sc = _R.script
    if not _R.heard(time.ticks_ms()):
        return []
    auth = network.AUTH_WPA2_PSK if sc.get("password") else network.AUTH_OPEN
    return [(sc["ssid"].encode(), b"\x02\x00\x00\x00\x00\x01", _R.channel, sc.get("rssi", -60), auth, False)]


def config(wlan, param, kw):
    if param and kw:
        raise TypeError("either pos or kw args are allowed")
    for k, v in kw.items():
        _set(wlan, k, v)
    if kw:
        return None
    if len(param) != 1:
        raise TypeError("can query only one param")
    return _get(wlan, param[0])


_AP_KEYS = ("ssid", "essid", "hidden", "security", "authmode", "key", "password", "max_clients")


def _set(wlan, k, v):
    if k == "mac":
        if len(v) != 6:
            raise ValueError("invalid buffer length")
    elif k in _AP_KEYS:
        wlan._need(network.AP_IF)
        k = {"essid": "ssid", "security": "authmode", "key": "password"}.get(k, k)
        _R.ap[k] = bool(v) if k == "hidden" else (v if k in ("ssid", "password") else int(v))
    elif k == "channel":
        _R.channel = int(v)
    elif k in ("hostname", "dhcp_hostname"):
        network.hostname(v)
    elif k == "reconnects":
        wlan._need(network.STA_IF)
        _R.reconnects = 0 if v == -1 else v + 1
    elif k == "txpower":
        _started()
        _R.txpower = min(84, max(8, int(v * 4)))  # quarter dBm; the IDF's range, 2..21 dBm
    elif k == "protocol":
        _R.protocol = int(v)
    elif k == "pm":
        if v not in (0, 1, 2):
            raise RuntimeError("Wifi Unknown Error 0x0102")  # ESP_ERR_INVALID_ARG
        _R.pm = v
    else:
        raise ValueError("unknown config param")


def _get(wlan, k):
    sta = wlan._if == network.STA_IF
    if k == "mac":
        return _R_mac(sta)
    if k in ("ssid", "essid"):
        return _R.ssid if sta else _R.ap["ssid"]
    if k in ("hidden", "security", "authmode", "max_clients"):
        v = _R.ap["authmode" if k == "security" else k]
        if k != "max_clients":
            wlan._need(network.AP_IF)
        return v
    if k == "channel":
        return _R.channel
    if k == "ifname":
        return "st1" if sta else "ap1"
    if k in ("hostname", "dhcp_hostname"):
        wlan._need(network.STA_IF)
        return network.hostname()
    if k == "reconnects":
        wlan._need(network.STA_IF)
        return _R.reconnects - 1
    if k == "txpower":
        _started()
        return _R.txpower * 0.25
    if k == "protocol":
        return _R.protocol
    if k == "pm":
        return _R.pm
    raise ValueError("unknown config param")


def _R_mac(sta):
    import _simradio

    return _simradio.MAC if sta else _simradio.MAC[:5] + b"\x01"  # the AP's: the base MAC + 1
