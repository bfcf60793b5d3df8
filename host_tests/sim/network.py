"""Fake of the ESP32 port's network module (Wi-Fi: WLAN, hostname, ipconfig) for the sim board,
after MicroPython v1.28.0 ports/esp32/network_wlan.c, network_common.c, modnetwork_globals.h and
extmod/modnetwork.c; names and values as in the micropython-esp32-*-stubs `make typecheck` uses.
The radio it talks to is scripted by the test (_simlink.py says how); time moves on by itself:
a join completes after the script's join_ms, and every call first catches up with what the port
would have done meanwhile (its own re-tries after a failure or a lost link, as the port makes
them while connect() is in force). Ethernet: LAN (in _simlan.py). No PPP. MicroPython only."""

import time

import _simlink
import _simradio

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
# the ESP-IDF's disconnect reasons (wifi_err_reason_t) the port passes through
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202  # WIFI_REASON_AUTH_FAIL
STAT_ASSOC_FAIL = 203
STAT_CONNECT_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = 210
STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD = 211
STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD = 212
MODE_11B = 1
MODE_11G = 2
MODE_11N = 4
MODE_LR = 8
AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4
AUTH_WPA2_ENTERPRISE = 5
AUTH_WPA3_PSK = 6
AUTH_WPA2_WPA3_PSK = 7
AUTH_MAX = 17

# Ethernet (network_lan.c): the PHYs and the LAN's status() values; PHY_OPENETH is QEMU's model
PHY_LAN8710 = 0
PHY_LAN8720 = 1
PHY_IP101 = 2
PHY_RTL8201 = 3
PHY_DP83848 = 4
PHY_KSZ8041 = 5
PHY_KSZ8081 = 6
PHY_KSZ8851SNL = 100
PHY_DM9051 = 101
PHY_W5500 = 102
PHY_OPENETH = 7  # MicroPython 1.29 (QEMU's Ethernet; not in v1.28's stubs); 7 on the QEMU image
ETH_INITIALIZED = 0
ETH_STARTED = 1
ETH_STOPPED = 2
ETH_CONNECTED = 3
ETH_DISCONNECTED = 4
ETH_GOT_IP = 5

_ASSOC_LEAVE = 8  # WIFI_REASON_ASSOC_LEAVE: the reason after disconnect(); status() says IDLE
_CONNECTION_FAIL = 205  # reported as STAT_WRONG_PASSWORD, as AUTH_FAIL is
_UNSET = object()
_hostname = ["mpy-" + _simlink.CHIP]  # MICROPY_PY_NETWORK_HOSTNAME_DEFAULT


def hostname(name=None):
    if name is None:
        return _hostname[0]
    if len(name) > 32:  # MICROPY_PY_NETWORK_HOSTNAME_MAX_LEN
        raise ValueError()
    _hostname[0] = name


# what a board seldom calls lives in _simwlan, loaded on first use: the fakes' bytecode takes the
# sim's heap, where the port's C code takes none of a board's


def country(code=None):
    import _simwlan

    return _simwlan.country(code)


def ipconfig(*args, **kw):
    import _simwlan

    return _simwlan.ipconfig(None, args, kw)


def phy_mode(mode=None):
    return None


_R = _simradio.Radio()


def _started():
    if not _R.mode:
        raise OSError("Wifi Not Started")


class WLAN:
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2
    SEC_OPEN = 0
    SEC_WEP = 1
    SEC_WPA = 2
    SEC_WPA2 = 3
    SEC_WPA_WPA2 = 4
    SEC_WPA2_ENT = 5
    SEC_WPA3 = 6
    SEC_WPA2_WPA3 = 7
    SEC_WAPI = 8
    SEC_OWE = 9
    PROTOCOL_DEFAULT = 7
    PROTOCOL_LR = 8
    _objs = {}

    def __new__(cls, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        o = cls._objs.get(interface_id)
        if o is None:  # the port has one object per interface
            o = object.__new__(cls)
            o._if = interface_id
            cls._objs[interface_id] = o
        return o

    def _need(self, if_id):
        if self._if != if_id:
            raise OSError("STA required" if if_id == STA_IF else "AP required")

    def active(self, *is_active):
        bit = 1 << self._if
        if is_active:
            if is_active[0]:
                _R.mode |= bit
            else:
                if bit == 1:
                    _R.catch_up()
                    _R.drop()
                _R.mode &= ~bit
        return bool(_R.mode & bit)

    def connect(self, ssid=_UNSET, password=_UNSET, *, bssid=None):
        _R.catch_up()
        if ssid is not _UNSET:  # a new config, from zeros: what is not given is empty
            if bssid is not None and len(bssid) != 6:
                raise ValueError()
            _R.ssid = ssid or ""
            _R.password = "" if password in (_UNSET, None) else password
        _started()
        _R.requests += 1
        _R.retries = 0
        _R.requested = True
        _R.connected = False
        _R.start(time.ticks_ms())  # also while connecting or connected: the join starts over
        _simlink.event("connect", _R.ssid)

    def disconnect(self):
        _R.catch_up()
        _R.requested = False
        _started()
        _R.drop()

    def isconnected(self):
        _R.catch_up()
        if self._if == STA_IF:
            return _R.connected
        return _R.script.get("ap_stations", 0) != 0

    def status(self, *param):
        _R.catch_up()
        if param:
            if param[0] == "rssi":
                self._need(STA_IF)
                if not _R.connected:
                    raise OSError("Wifi Not Connected")
                return _R.script.get("rssi", -60)
            if param[0] == "stations":
                self._need(AP_IF)
                return [(_simradio.MAC[:5] + bytes([0x80 + i]),) for i in range(_R.script.get("ap_stations", 0))]
            raise ValueError("unknown status param")
        if self._if != STA_IF:
            return None
        r = _R.reason
        if _R.connected:
            return STAT_GOT_IP
        if r in (STAT_NO_AP_FOUND, STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD, STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD,
                 STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY):
            return r
        if r in (STAT_WRONG_PASSWORD, _CONNECTION_FAIL):
            return STAT_WRONG_PASSWORD
        if r == _ASSOC_LEAVE:
            return STAT_IDLE
        if _R.requested and (_R.reconnects == 0 or _R.retries < _R.reconnects):
            return STAT_CONNECTING
        return STAT_IDLE if r == 0 else r

    def _addr(self):
        if _R.static[self._if] is not None:
            return _R.static[self._if]
        if self._if == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        _R.catch_up()
        return _R.dhcp[0] or ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def ifconfig(self, *config):
        if not config:
            return self._addr()
        import _simwlan

        _simwlan.ifconfig(self, config[0])

    def config(self, *param, **kw):
        if not param and len(kw) == 1 and "pm" in kw:  # every board sets it: no _simwlan for it
            if kw["pm"] not in (0, 1, 2):
                raise RuntimeError("Wifi Unknown Error 0x0102")  # ESP_ERR_INVALID_ARG
            _R.pm = kw["pm"]
            return None
        import _simwlan

        return _simwlan.config(self, param, kw)

    def ipconfig(self, *args, **kw):
        import _simwlan

        return _simwlan.ipconfig(self, args, kw)

    def scan(self):
        import _simwlan

        return _simwlan.scan()


def LAN(*args, **kw):  # noqa: N802 - the port's name
    import _simlan

    return _simlan.LAN(*args, **kw)
