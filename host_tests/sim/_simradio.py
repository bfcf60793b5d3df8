"""The Wi-Fi station of the sim board's fake network module (network.py): the state the ESP32
port keeps in C (ports/esp32/network_wlan.c, v1.28.0: wifi_sta_connect_requested,
wifi_sta_connected, wifi_sta_disconn_reason, its event handler's re-tries) against the access
point the test scripts (_simlink.py). Time moves on by itself: every call of the fake first
catches up with what the port would have done since, in order. MicroPython only."""

import time

import _simlink

# the ESP-IDF's disconnect reasons (wifi_err_reason_t) it sets; network.py names them STAT_*
BEACON_TIMEOUT = 200
NO_AP_FOUND = 201
AUTH_FAIL = 202  # network.STAT_WRONG_PASSWORD
ASSOC_LEAVE = 8  # after disconnect(); status() says STAT_IDLE
MAC = b"\x24\x6f\x28\x51\x1c\x00" if _simlink.CHIP == "esp32" else b"\x34\x85\x18\x51\x1c\x00"  # the base MAC


class Radio:
    """What the port keeps in C: wifi_started, the mode bits, and the STA's state."""

    def __init__(self):
        self.mode = 0  # WIFI_MODE_STA 1 | WIFI_MODE_AP 2; 0: esp_wifi_stop()ped
        self.requested = False  # wifi_sta_connect_requested: the port re-tries while it is set
        self.connected = False  # wifi_sta_connected: associated and holding an address
        self.reason = 0  # wifi_sta_disconn_reason (0: none)
        self.join = None  # the association under way: [start, end, outcome], ticks_ms
        self.ssid, self.password = "", ""
        self.requests = 0  # connect() calls under the current script
        self.retries = 0  # the port's re-tries since the last connect()
        self.up_at = 0  # when the link came up
        self.script = None
        self.dhcp = [None, True]  # the address DHCP gave (kept after the link is lost), DHCP on
        self.static = [None, None]  # ifconfig() set by the app, per interface
        self.pm, self.txpower, self.protocol, self.channel = 1, 80, 7, 1  # PM_PERFORMANCE, 20 dBm
        self.reconnects = 0
        self.ap = {"ssid": "ESP_511C01", "password": "", "authmode": 0, "hidden": False,
                   "max_clients": 10}

    def catch_up(self):
        sc, t0 = _simlink.script()
        if sc is not self.script:
            self.script, self.t0, self.requests = sc, t0, 0
        now = time.ticks_ms()
        for _ in range(10000):  # what happened since the last call, in order: drops, joins, re-tries
            if self.connected:
                t = self.dropped(now)
                if t is None:
                    return
                self.connected, self.reason = False, BEACON_TIMEOUT  # beacons stop: the link drops
                _simlink.event("down", BEACON_TIMEOUT)
                self.retry(t)
                continue
            j = self.join
            if j is None or time.ticks_diff(now, j[1]) < 0:
                return
            self.join = None
            if j[2] == 0:
                self.connected, self.reason, self.up_at = True, 0, j[1]
                self.dhcp[0] = self.lease(j[1])
                _simlink.event("up", self.dhcp[0][0])
            else:
                self.reason = j[2]
                self.retry(j[1])

    def retry(self, t):
        # the port's event handler: connect again while connect() is in force, up to `reconnects`
        self.retries += 1
        if self.requested and (self.reconnects == 0 or self.retries < self.reconnects):
            self.start(t)

    def dropped(self, now):
        """When the link that is up lost its access point (None: it has not)."""
        if not self.script.get("in_range", True):
            return now
        o = self.outage()
        if o is not None and time.ticks_diff(o[0], self.up_at) >= 0 and time.ticks_diff(now, o[0]) >= 0:
            return o[0]
        return None

    def ms(self, key, default):
        return max(10, int(self.script.get(key, default)))

    def outage(self):
        sc = self.script
        if "drop_after_s" not in sc:
            return None
        a = time.ticks_add(self.t0, int(sc["drop_after_s"] * 1000))
        return a, time.ticks_add(a, int(sc.get("down_s", 5) * 1000))

    def heard(self, t):
        if not self.script.get("in_range", True) or not self.script.get("ssid"):
            return False
        o = self.outage()
        return o is None or not (time.ticks_diff(t, o[0]) >= 0 and time.ticks_diff(t, o[1]) < 0)

    def start(self, t):
        """An association attempt from time t: its outcome is settled by the script now."""
        sc = self.script
        if not self.heard(t) or self.ssid != sc.get("ssid"):
            outcome = NO_AP_FOUND
        elif 0 < self.requests <= sc.get("fail_joins", 0):  # connect() calls made under this script
            outcome = sc.get("fail_status", NO_AP_FOUND)
        elif self.password != sc.get("password", ""):
            outcome = AUTH_FAIL
        else:
            outcome = 0
        dur = self.ms("join_ms", 100) if outcome == 0 else self.ms("fail_ms", 300)
        self.join = [t, time.ticks_add(t, dur), outcome]

    def lease(self, t):
        sc = self.script
        ip = sc.get("ip", "127.0.0.1")
        o = self.outage()
        if o is not None and "ip_after" in sc and time.ticks_diff(t, o[1]) >= 0:
            ip = sc["ip_after"]
        return (ip, sc.get("netmask", "255.0.0.0"), sc.get("gateway", "127.0.0.1"), sc.get("dns", "127.0.0.1"))

    def drop(self):
        # esp_wifi_disconnect() / esp_wifi_stop(): the link or the join in progress ends
        if self.connected or self.join is not None:
            self.connected, self.join, self.reason = False, None, ASSOC_LEAVE
