# Board glue: the only module that imports network, machine and esp32. host_tests/sim/board.py
# stands in for it on the host, with the same names.

import sys
import time

import asyncio
import machine
import network

SETTINGS_PATH = "/settings.json"
NEEDS_WIFI = True
BIND_HOST = "0.0.0.0"
WWW_ROOT = "/www"

# on-board LED of the usual dev boards: (pin, active low)
_DEFAULT_LED = {"esp32c3": (8, True), "esp32": (2, False)}


def _chip():
    m = sys.implementation._machine.lower()
    return "esp32c3" if "c3" in m else "esp32"


class Board:
    def __init__(self, settings):
        self.settings = settings
        self.name = sys.implementation._machine
        self.www_root = WWW_ROOT
        self.wlan = None
        self.wdt = None
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
        try:
            import esp32
        except ImportError:
            return None
        mcu = getattr(esp32, "mcu_temperature", None)  # C3, S2, S3: Celsius
        if mcu is not None:
            return mcu()
        raw = getattr(esp32, "raw_temperature", None)  # original ESP32: Fahrenheit, uncalibrated
        if raw is not None:
            return round((raw() - 32) / 1.8, 1)
        return None

    # ---- network ----

    def connect(self):
        """Join the Wi-Fi network, retrying with backoff until it works; returns the IP."""
        s = self.settings
        network.hostname(s.hostname)
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        # power save off: with it on, the radio sleeps between beacons and requests wait or drop
        wlan.config(pm=wlan.PM_NONE)
        if s.tx_power_dbm is not None:
            wlan.config(txpower=s.tx_power_dbm)
        self.wlan = wlan
        delay = 1
        attempt = 0
        while not self._join(15000):
            attempt += 1
            print("nostall: Wi-Fi %r: attempt %d failed (status %s); retry in %d s" % (s.ssid, attempt, wlan.status(), delay))
            time.sleep(delay)
            delay = min(delay * 2, s.wifi_retry_max_s)
        ip = wlan.ifconfig()[0]
        print("nostall: Wi-Fi %r connected, IP %s" % (s.ssid, ip))
        return ip

    def _join(self, timeout_ms):
        wlan = self.wlan
        if wlan.isconnected():
            return True
        wlan.connect(self.settings.ssid, self.settings.password)
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
            if wlan.isconnected():
                return True
            time.sleep_ms(100)
        wlan.disconnect()
        return False

    async def _keep_wifi(self):
        # the server's listening socket survives a reconnect; only the link needs bringing back
        delay = 1
        while True:
            await asyncio.sleep(2)
            if self.wlan.isconnected():
                delay = 1
                continue
            print("nostall: Wi-Fi link lost; reconnecting")
            self.wlan.disconnect()
            self.wlan.connect(self.settings.ssid, self.settings.password)
            for _ in range(150):
                await asyncio.sleep_ms(100)
                if self.wlan.isconnected():
                    break
            if self.wlan.isconnected():
                print("nostall: Wi-Fi back, IP %s" % self.wlan.ifconfig()[0])
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.wifi_retry_max_s)

    async def _feed_watchdog(self):
        # fed from the event loop: if the loop stalls, the board resets
        period = self.settings.watchdog_ms // 3
        while True:
            self.wdt.feed()
            await asyncio.sleep_ms(period)

    def start(self, server):
        asyncio.create_task(self._keep_wifi())
        if self.settings.watchdog_ms:
            self.wdt = machine.WDT(timeout=self.settings.watchdog_ms)
            asyncio.create_task(self._feed_watchdog())
