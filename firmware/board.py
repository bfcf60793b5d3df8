# Board glue: the only module that imports network, machine and esp32 (with ethernet.py, which it
# loads for a "lan" section). The sim board runs it as it is, on fakes of those modules
# (host_tests/sim/).

import sys
import time

import asyncio
import esp32
import machine
import network

import jsonfile

SETTINGS_PATH = "/settings.json"
NEEDS_WIFI = True
BIND_HOST = "0.0.0.0"
WWW_ROOT = "/www"
DATA_ROOT = "/data"  # what /api/files writes (made at its first use)
UPDATE_PATH = "/update.json"  # boots counted, the firmware slot on trial, the last update's result
APP_STATE = "/app.json"  # which copy of the firmware's Python runs, and whether on trial (main.py)
# MicroPython's esp32 port grows its GC heap from ESP-IDF's when an allocation does not fit
# (MICROPY_GC_SPLIT_HEAP_AUTO); the unix port's heap is one fixed area
HEAP_GROWS = sys.platform == "esp32"
_TRIAL_POLL_MS = 200  # how often a firmware on trial looks whether it has served a request

_JOIN_POLL_MS = 100  # how often a join in progress is checked
_JOIN_TIMEOUT_MS = 15000  # one join attempt: association plus DHCP on a busy network
_JOIN_RETRY_FIRST_S = 1  # the first wait after a failed join; it doubles up to wifi_retry_max_s
_WDT_FEEDS = 3  # feeds per watchdog period: one late feed is no reset
_LINK_CHECK_S = 2  # how often the link is checked once up
# NTP at start-up ("ntp" in the settings), for the Date header: ntptime blocks the event loop on
# each query, so it runs before the server listens and before the watchdog starts, a few short
# tries: with no answer start-up waits _NTP_TRIES * _NTP_TIMEOUT_S plus the pauses (and the name
# lookups: an IPv4 address in "ntp" has none), then the board serves without a Date
_NTP_TRIES = 3
_NTP_TIMEOUT_S = 1  # ntptime.timeout: an answer from a server on the Internet takes well under it
_NTP_PAUSE_MS = 500

# what a failed join says in the log; the statuses with a fix end the attempt at once (the port
# goes on re-trying by itself meanwhile), and their fix is printed the first time they are seen
# (no access point: only until the board has been on the network: then the settings were right)
_STATUS = {
    network.STAT_IDLE: "idle",
    network.STAT_CONNECTING: "no answer yet",
    network.STAT_BEACON_TIMEOUT: "the access point went silent",
    network.STAT_NO_AP_FOUND: "no access point found",
    network.STAT_WRONG_PASSWORD: "wrong password",
    network.STAT_ASSOC_FAIL: "association refused",
    network.STAT_HANDSHAKE_TIMEOUT: "handshake timed out",
}
_FIX = {
    network.STAT_NO_AP_FOUND: 'no access point %r in range: check "wifi": {"ssid": ...} in %s (2.4 GHz networks only)',
    network.STAT_WRONG_PASSWORD: 'the access point %r refused the password: correct "wifi": {"password": ...} in %s',
}

# on-board LED of the usual dev boards: (pin, active low)
_DEFAULT_LED = {"esp32c3": (8, True), "esp32": (2, False)}


def _reset_cause():
    c = machine.reset_cause()
    for name in ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"):
        if getattr(machine, name, None) == c:
            return name[:-6].lower()  # "pwron", "hard", "wdt", "deepsleep", "soft"
    return "unknown"


def _chip():
    m = sys.implementation._machine.lower()
    return "esp32c3" if "c3" in m else "esp32"


class Board:
    def __init__(self, settings):
        self.settings = settings
        self.name = sys.implementation._machine
        self.www_root = WWW_ROOT
        self.data_root = DATA_ROOT
        self.firmware = "%d.%d.%d" % sys.implementation.version[:3]  # MicroPython's
        # (the stubs type Partition(id) as a label; the port takes RUNNING and BOOT too)
        self.running_slot = esp32.Partition(esp32.Partition.RUNNING).info()[4]  # pyright: ignore[reportArgumentType]
        self.update = self._boot_record()
        self.app_state = jsonfile.read(APP_STATE) or {}
        self.wlan = None
        self.lan = None
        self.joined = False  # on the network at least once since start-up
        self.wdt = None
        self.reset_cause = _reset_cause()
        pin, low = _DEFAULT_LED.get(_chip(), (None, False))
        if settings.led_pin is not None:
            pin, low = settings.led_pin, settings.led_active_low
        self._led = machine.Pin(pin, machine.Pin.OUT) if pin is not None else None
        self._led_low = low
        self._led_on = False
        if self._led is not None:
            self.set_led(False)

    # ---- hardware the app uses ----

    def has_led(self):
        return self._led is not None

    def set_led(self, on):
        self._led_on = bool(on)
        self._led.value(self._led_on != self._led_low)

    def led(self):
        return self._led_on

    def temperature_c(self):
        """MCU die temperature in Celsius, or None where the chip has no sensor."""
        mcu = getattr(esp32, "mcu_temperature", None)  # C3, S2, S3: Celsius
        if mcu is not None:
            return mcu()
        raw = getattr(esp32, "raw_temperature", None)  # original ESP32: Fahrenheit, uncalibrated
        if raw is not None:
            return round((raw() - 32) / 1.8, 1)
        return None

    def vitals(self):
        """The board's health for /status and /metrics: Wi-Fi RSSI (dBm) while connected, why it
        last reset, its boots, the firmware slot it runs and the last update's result."""
        d = {}
        d["reset_cause"] = self.reset_cause
        d["running_slot"] = self.running_slot
        d["boot_count"] = self.update.get("boot_count", 0)
        d["last_update"] = self.update.get("last")
        d["network"] = "lan" if self.lan is not None else "wifi"
        # ESP-IDF's own heap (lwIP's pcbs and buffers, the Wi-Fi driver), beside MicroPython's
        regions = esp32.idf_heap_info(esp32.HEAP_DATA)
        d["idf_heap_free"] = sum(r[1] for r in regions)
        d["idf_heap_min_free"] = sum(r[3] for r in regions)
        wlan = self.wlan
        if wlan is not None and wlan.isconnected():
            try:
                d["wifi_rssi_dbm"] = wlan.status("rssi")
            except (OSError, ValueError):
                pass
        return d

    # ---- network ----

    def system_free(self):
        """ESP-IDF's free heap in bytes: lwIP's, the network driver's, and where MicroPython grows
        its own from (the server's ticker reads it: nostall/heapkeep.py)."""
        n = 0
        for r in esp32.idf_heap_info(esp32.HEAP_DATA):
            n += r[1]
        return n

    async def connect(self):
        """Join the Wi-Fi network (power save off), retrying with backoff until it works, or bring
        up Ethernet when the settings have a "lan" section; then set the clock by NTP when the
        settings name a server. Returns the IP."""
        ip = await self._network()
        if self.settings.ntp is not None:
            await self.set_clock(self.settings.ntp)
        return ip

    async def set_clock(self, host):
        """Set the clock from the NTP server host (a few tries of at most _NTP_TIMEOUT_S, each
        blocking the event loop); True when it was set. Until then the clock is the chip's own
        (2000-01-01 at power-on) and answers carry no Date header (nostall/framing.py)."""
        import ntptime  # loaded only here: a board without "ntp" does not hold it

        ntptime.host = host
        ntptime.timeout = _NTP_TIMEOUT_S
        for attempt in range(1, _NTP_TRIES + 1):
            try:
                ntptime.settime()
            except Exception as e:  # OSError: no answer or no such name; a short answer: another error
                print("nostall: NTP %r: try %d of %d failed (%r)" % (host, attempt, _NTP_TRIES, e))
                if attempt < _NTP_TRIES:
                    await asyncio.sleep_ms(_NTP_PAUSE_MS)
                continue
            t = time.gmtime()
            print("nostall: clock set by NTP %r: %04d-%02d-%02d %02d:%02d:%02d UTC" % ((host,) + tuple(t[:6])))
            return True
        print("nostall: NTP %r: no answer; serving without a Date header until the next start" % host)
        return False

    async def _network(self):
        s = self.settings
        if s.lan is not None:
            import ethernet  # loaded only here: a Wi-Fi board's heap does not hold it

            self.lan, ip = await ethernet.up(s.lan, SETTINGS_PATH)
            self.joined = True
            return ip
        network.hostname(s.hostname)
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        # power save off: with it on, the radio sleeps between beacons and requests wait or drop
        wlan.config(pm=wlan.PM_NONE)
        if s.tx_power_dbm is not None:
            wlan.config(txpower=s.tx_power_dbm)
        self.wlan = wlan
        await self._join()
        return wlan.ifconfig()[0]

    async def _join(self):
        # the one retry loop, at start-up and after the link is lost: the listening socket
        # survives a reconnect, only the link needs bringing back
        s = self.settings
        wlan = self.wlan
        delay, attempt, told = _JOIN_RETRY_FIRST_S, 0, None
        while True:
            if not wlan.isconnected():
                wlan.disconnect()
                wlan.connect(s.ssid, s.password)
                for _ in range(_JOIN_TIMEOUT_MS // _JOIN_POLL_MS):
                    await asyncio.sleep_ms(_JOIN_POLL_MS)
                    if wlan.isconnected() or wlan.status() in _FIX:
                        break
            if wlan.isconnected():
                print("nostall: Wi-Fi %r connected, IP %s" % (s.ssid, wlan.ifconfig()[0]))
                self.joined = True
                return
            attempt += 1
            st = wlan.status()
            print("nostall: Wi-Fi %r: attempt %d failed (%s, status %s); retry in %d s"
                  % (s.ssid, attempt, _STATUS.get(st, "failed"), st, delay))
            if st in _FIX and st != told and not (self.joined and st == network.STAT_NO_AP_FOUND):
                told = st
                print("nostall: Wi-Fi: " + _FIX[st] % (s.ssid, SETTINGS_PATH))
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.wifi_retry_max_s)

    async def _keep_wifi(self):
        if self.wlan is None:
            return  # Ethernet: link changes are ESP-IDF's Ethernet driver's (not tested here)
        while True:
            await asyncio.sleep(_LINK_CHECK_S)
            if not self.wlan.isconnected():
                print("nostall: Wi-Fi link lost; reconnecting")
                await self._join()

    async def _feed_watchdog(self):
        # fed from the event loop: if the loop stalls, the board resets
        period = self.settings.watchdog_ms // _WDT_FEEDS
        while True:
            self.wdt.feed()
            await asyncio.sleep_ms(period)

    # ---- updates (ota.py, loaded by the first one) ----

    def _boot_record(self):
        # one more boot; a firmware on trial that is not the one running was rolled back by the
        # bootloader: it failed its health check, or did not come up at all
        rec = jsonfile.read(UPDATE_PATH) or {}
        rec["boot_count"] = rec.get("boot_count", 0) + 1
        pending = rec.get("pending")
        if pending is not None and pending != self.running_slot:
            last = rec.get("last") or {}
            why = "it failed its health check" if last.get("result") == "health_check_failed" else "it did not come up"
            rec["last"] = {"kind": "firmware", "result": "rolled_back", "slot": pending,
                           "detail": "%s: back on %s" % (why, self.running_slot)}
            rec["pending"] = None
        self._save(rec)
        return rec

    def _save(self, rec):
        try:
            jsonfile.write(UPDATE_PATH, rec)
        except OSError as e:
            print("nostall: could not write %s: %r" % (UPDATE_PATH, e))

    def update_done(self, kind, result, slot, detail, pending=None):
        """Record an update's result (and the slot on trial after the reset, if any)."""
        rec = self.update
        rec["last"] = {"kind": kind, "result": result, "slot": slot, "detail": detail}
        rec["pending"] = pending
        self._save(rec)
        print("nostall: %s update: %s (%s): %s" % (kind, result, slot, detail))

    def set_app(self, st):
        """The copy of the firmware's Python main.py runs from the next boot (/app.json)."""
        self.app_state = st
        jsonfile.write(APP_STATE, st)

    def slots(self):
        import ota

        return ota.slots()

    def chip_id(self):
        import ota

        return ota.chip_id()

    def firmware_slot(self):
        import ota

        return ota.Slot()

    def reset_soon(self, ms):
        async def later():
            await asyncio.sleep_ms(ms)
            machine.reset()

        asyncio.create_task(later())

    async def _on_trial(self, server):
        # the first start of a new firmware, or of a new copy of its Python (main.py): it must
        # serve a request within health_window_ms (the update tool's, or anyone's); then it is
        # kept, else the board resets and the last one comes back (the bootloader's rollback for
        # a firmware, main.py's boot counter for an app)
        firmware = self.update.get("pending") == self.running_slot
        kind, slot = ("firmware", self.running_slot) if firmware else ("app", self.app_state.get("active"))
        window = server.cfg.health_window_ms
        waited = 0
        while server.stats.requests == 0:
            if waited >= window:
                self.update_done(kind, "health_check_failed", slot, "no request served within %d ms of its start" % window,
                                 self.running_slot if firmware else None)
                machine.reset()
            await asyncio.sleep_ms(_TRIAL_POLL_MS)
            waited += _TRIAL_POLL_MS
        if firmware:
            import ota

            ota.mark_valid()
        else:
            self.app_state["trial"] = False
            self.app_state["boots"] = 0
            jsonfile.write(APP_STATE, self.app_state)
        self.update_done(kind, "ok", slot, "served a request: kept")

    def start(self, server):
        if self.update.get("pending") == self.running_slot or self.app_state.get("trial"):
            asyncio.create_task(self._on_trial(server))
        asyncio.create_task(self._keep_wifi())
        if self.settings.watchdog_ms:
            self.wdt = machine.WDT(timeout=self.settings.watchdog_ms)
            asyncio.create_task(self._feed_watchdog())
