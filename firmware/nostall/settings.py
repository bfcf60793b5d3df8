# The settings file on flash (JSON): Wi-Fi or Ethernet, hostname, port, limits, watchdog, LED pin,
# API token, NTP server.
# Validated at start-up; every problem becomes one SettingsError line saying how to fix it.

import json

from nostall.config import Config, ConfigError, SettingsError  # noqa: F401 - SettingsError: this module's

_KNOWN = (
    "wifi",
    "lan",
    "hostname",
    "http_port",
    "limits",
    "watchdog_ms",
    "led_pin",
    "led_active_low",
    "tx_power_dbm",
    "wifi_retry_max_s",
    "api_token",
    "ntp",
)
# the api_token: RFC 6750's b64token characters, long enough not to be guessed over HTTP
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
_TOKEN_MIN = 16
_TOKEN_MAX = 128  # a header field of its own stays far below max_header_bytes
# the board feeds the watchdog from the event loop three times per period: under a second, a
# handler's ordinary pause (a flash write, a garbage collection) would reset it
_WATCHDOG_MIN_MS = 1000
# Wi-Fi retries back off to this: an access point that restarts is back within a minute
_WIFI_RETRY_MAX_S = 30
# "ntp": a host name (RFC 1123: letters, digits, hyphens; dots between labels) or an IPv4 address
_HOST_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
_HOST_MAX = 253


class Settings:
    """The settings, checked: a record (no methods), so a board keeps nothing of this module's
    code once it has loaded them (main.py drops the module). Its fields, set by _fill():"""

    ssid = password = hostname = api_token = ntp = lan = led_pin = None
    http_port = watchdog_ms = tx_power_dbm = wifi_retry_max_s = 0
    led_active_low = False
    config = None  # a Config, from "limits"


def _fill(self, d, need_wifi):
    for k in d:
        if k not in _KNOWN:
            raise SettingsError("unknown setting %r; known: %s" % (k, ", ".join(_KNOWN)))
    wifi = d.get("wifi")
    if wifi is None:
        wifi = {}
    if not isinstance(wifi, dict):
        raise SettingsError('"wifi" must be an object: {"ssid": "...", "password": "..."}')
    self.ssid = wifi.get("ssid", "")
    self.password = wifi.get("password", "")
    if not isinstance(self.ssid, str) or not isinstance(self.password, str):
        raise SettingsError("wifi ssid and password must be strings")
    self.lan = None
    if d.get("lan") is not None:  # Ethernet: its checks load only on boards that use it
        from nostall.lan import check

        self.lan = check(d["lan"])
    if need_wifi and not self.ssid and self.lan is None:
        raise SettingsError('no network: set "wifi": {"ssid": ..., "password": ...} (or "lan": {"phy": ...} for Ethernet)')
    self.hostname = _get(d, "hostname", str, "nostall")
    self.http_port = _get(d, "http_port", int, 80)
    if not 1 <= self.http_port <= 65535:
        raise SettingsError("http_port must be 1..65535, got %d" % self.http_port)
    self.watchdog_ms = _get(d, "watchdog_ms", int, 0)
    if self.watchdog_ms and self.watchdog_ms < _WATCHDOG_MIN_MS:
        raise SettingsError("watchdog_ms must be 0 (off) or at least %d" % _WATCHDOG_MIN_MS)
    self.led_pin = _get(d, "led_pin", int, None)
    self.led_active_low = _get(d, "led_active_low", bool, False)
    self.tx_power_dbm = _get(d, "tx_power_dbm", int, None)
    self.wifi_retry_max_s = _get(d, "wifi_retry_max_s", int, _WIFI_RETRY_MAX_S)
    self.api_token = _token(d)
    self.ntp = _ntp(d)
    limits = d.get("limits")
    if limits is None:
        limits = {}
    if not isinstance(limits, dict):
        raise SettingsError('"limits" must be an object of limit names to integers')
    try:
        self.config = Config(**limits)
    except ConfigError as e:
        raise SettingsError("limits: %s" % e)


def _token(d):
    t = d.get("api_token")
    if t is None:
        return None  # no token: every endpoint is open
    if type(t) is not str:
        raise SettingsError("setting 'api_token' must be a string (or null for none), got %r" % (t,))
    if not _TOKEN_MIN <= len(t) <= _TOKEN_MAX:
        raise SettingsError(
            "api_token must be %d..%d characters, got %d (or null for none)" % (_TOKEN_MIN, _TOKEN_MAX, len(t))
        )
    for c in t:
        if c not in _TOKEN_CHARS:
            raise SettingsError("api_token may hold only letters, digits and - . _ ~ + / =, not %r" % c)
    return t


def _ntp(d):
    h = d.get("ntp")
    if h is None:
        return None  # no NTP: the clock is never set, and answers carry no Date header
    # only host name characters (strip() leaves nothing), no empty label ("", ".x", "x..y", "x.")
    if type(h) is not str or len(h) > _HOST_MAX or h.strip(_HOST_CHARS) or "" in h.split("."):
        raise SettingsError('"ntp" must be an NTP server\'s host name or IPv4 address, e.g. "pool.ntp.org" '
                            "(or null for none), not %r" % (h,))
    return h


def _get(d, key, typ, default):
    v = d.get(key, default)
    if v is None:
        return default
    if type(v) is not typ:
        raise SettingsError("setting %r must be %s, got %r" % (key, typ.__name__, v))
    return v


def load(path, need_wifi=True):
    """Read and check the settings file; SettingsError with a one-line fix when it is wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise SettingsError(
            "no settings file %s: copy settings.example.json there with your Wi-Fi name and password" % path
        )
    try:
        d = json.loads(text)
    except ValueError:
        raise SettingsError("%s is not valid JSON" % path)
    if not isinstance(d, dict):
        raise SettingsError("%s must hold a JSON object" % path)
    settings = Settings()
    _fill(settings, d, need_wifi)
    return settings
