# The settings file (firmware/nostall/settings.py): what it accepts, and a one-line fix for
# everything it refuses. Runs on CPython and on MicroPython.

import json

from unitcheck import raises

from nostall.settings import SettingsError, load

PATH = "/tmp/nostall-unit-settings.json"


def write(text):
    with open(PATH, "w") as f:
        f.write(text if isinstance(text, str) else json.dumps(text))
    return PATH


def test_a_full_file():
    s = load(write({"wifi": {"ssid": "home", "password": "pw"}, "hostname": "porch", "http_port": 8080,
                    "limits": {"max_connections": 4}, "watchdog_ms": 8000, "led_pin": 5, "led_active_low": True,
                    "tx_power_dbm": 8, "wifi_retry_max_s": 60, "api_token": "abcdefghij012345"}))
    assert (s.ssid, s.password, s.hostname, s.http_port) == ("home", "pw", "porch", 8080)
    assert s.config.max_connections == 4 and s.watchdog_ms == 8000 and s.led_pin == 5 and s.led_active_low
    assert s.tx_power_dbm == 8 and s.wifi_retry_max_s == 60 and s.api_token == "abcdefghij012345"


def test_defaults_without_wifi_on_the_sim():
    s = load(write({}), need_wifi=False)
    assert s.http_port == 80 and s.hostname == "nostall" and s.api_token is None and s.watchdog_ms == 0
    assert s.config.max_connections == 6


def test_every_mistake_is_one_line_with_a_fix():
    cases = [
        ({}, "no Wi-Fi network"),
        ({"wifi": "home"}, '"wifi" must be an object'),
        ({"wifi": {"ssid": "a"}, "http_port": 0}, "http_port must be 1..65535"),
        ({"wifi": {"ssid": "a"}, "http_port": "80"}, "must be int"),
        ({"wifi": {"ssid": "a"}, "watchdog_ms": 10}, "at least 1000"),
        ({"wifi": {"ssid": "a"}, "limits": {"max_header_bytes": 99999}}, "limits: max_header_bytes=99999 does not fit"),
        ({"wifi": {"ssid": "a"}, "limits": []}, '"limits" must be an object'),
        ({"wifi": {"ssid": "a"}, "colour": "red"}, "unknown setting 'colour'"),
        ({"wifi": {"ssid": "a"}, "api_token": "short"}, "api_token must be 16..128 characters"),
        ({"wifi": {"ssid": "a"}, "api_token": "abcdefghij01234 5"}, "api_token may hold only"),
        ({"wifi": {"ssid": "a"}, "api_token": 1234567890123456}, "must be a string"),
    ]
    for d, msg in cases:
        with raises(SettingsError, msg) as e:
            load(write(d))
        assert "\n" not in str(e.value), d
    with raises(SettingsError, "is not valid JSON"):
        load(write("{nope"))
    with raises(SettingsError, "must hold a JSON object"):
        load(write("[1]"))
    with raises(SettingsError, "copy settings.example.json"):
        load("/tmp/nostall-unit-no-such-file.json")
