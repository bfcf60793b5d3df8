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
                    "tx_power_dbm": 8, "wifi_retry_max_s": 60, "api_token": "abcdefghij012345", "ntp": "pool.ntp.org"}))
    assert (s.ssid, s.password, s.hostname, s.http_port) == ("home", "pw", "porch", 8080)
    assert s.config.max_connections == 4 and s.watchdog_ms == 8000 and s.led_pin == 5 and s.led_active_low
    assert s.tx_power_dbm == 8 and s.wifi_retry_max_s == 60 and s.api_token == "abcdefghij012345"
    assert s.ntp == "pool.ntp.org"


def test_ntp_server():
    # optional: without it the board never sets its clock and sends no Date header
    for value in (None, "pool.ntp.org", "192.168.1.1", "time-a.example.net", "ntp"):
        d = {"wifi": {"ssid": "a"}}
        if value is not None:
            d["ntp"] = value
        assert load(write(d)).ntp == value, value
    for value in (123, "", ["pool.ntp.org"], "a" * 254, "pool.ntp.org:123", "ntp server", "http://x", ".pool.ntp.org",
                  "pool..org", "pool.org.", "."):
        with raises(SettingsError, '"ntp" must be an NTP server\'s host name or IPv4 address, e.g. "pool.ntp.org"') as e:
            load(write({"wifi": {"ssid": "a"}, "ntp": value}))
        assert ("not %r" % (value,)) in str(e.value) and "\n" not in str(e.value), (value, str(e.value))


def test_defaults_without_wifi_on_the_sim():
    s = load(write({}), need_wifi=False)
    assert s.http_port == 80 and s.hostname == "nostall" and s.api_token is None and s.watchdog_ms == 0
    assert s.ntp is None
    assert s.config.max_connections == 6


def test_ethernet_instead_of_wifi():
    s = load(write({"lan": {"phy": "LAN8720", "phy_addr": 1, "mdc": 23, "mdio": 18, "power": 12, "ref_clk": 17,
                            "ref_clk_mode": "out", "ipv4": "192.168.1.50/24", "gateway": "192.168.1.1", "dns": "1.1.1.1"}}))
    assert s.ssid == "" and s.lan["phy"] == "LAN8720" and s.lan["mdc"] == 23 and s.lan["ref_clk_mode"] == "out"
    assert s.lan["ipv4"] == "192.168.1.50/24" and s.lan["spi"] is None
    s = load(write({"lan": {"phy": "W5500", "spi": {"id": 1, "sck": 6, "mosi": 7, "miso": 2}, "cs": 10, "int": 3}}))
    assert s.lan["spi"] == {"id": 1, "sck": 6, "mosi": 7, "miso": 2, "baudrate": None} and s.lan["phy_addr"] == 0
    s = load(write({"lan": {"phy": "OPENETH"}}))  # QEMU's: DHCP, PHY address 1
    assert s.lan["phy_addr"] == 1 and s.lan["ipv4"] is None
    assert load(write({"wifi": {"ssid": "a"}})).lan is None


def test_every_mistake_is_one_line_with_a_fix():
    cases = [
        ({}, "no network: set \"wifi\""),
        ({"wifi": "home"}, '"wifi" must be an object'),
        ({"wifi": {"ssid": "a"}, "http_port": 0}, "http_port must be 1..65535"),
        ({"wifi": {"ssid": "a"}, "http_port": "80"}, "must be int"),
        ({"wifi": {"ssid": "a"}, "watchdog_ms": 10}, "at least 1000"),
        ({"wifi": {"ssid": "a"}, "limits": {"max_header_bytes": 99999}}, "limits: limit max_header_bytes=99999 is above its maximum 16384"),
        ({"wifi": {"ssid": "a"}, "limits": []}, '"limits" must be an object'),
        ({"wifi": {"ssid": "a"}, "colour": "red"}, "unknown setting 'colour'"),
        ({"wifi": {"ssid": "a"}, "api_token": "short"}, "api_token must be 16..128 characters"),
        ({"wifi": {"ssid": "a"}, "api_token": "abcdefghij01234 5"}, "api_token may hold only"),
        ({"wifi": {"ssid": "a"}, "api_token": 1234567890123456}, "must be a string"),
        ({"lan": "eth"}, '"lan" must be an object'),
        ({"lan": {"phy": "LAN9999"}}, "lan phy must be one of LAN8720, IP101"),
        ({"lan": {"phy": "LAN8720"}}, 'needs its "mdc" and "mdio" pins'),
        ({"lan": {"phy": "W5500", "cs": 10}}, 'is on SPI: set "spi"'),
        ({"lan": {"phy": "W5500", "spi": {"id": 1, "clock": 5}, "cs": 10}}, 'is on SPI: set "spi"'),
        ({"lan": {"phy": "OPENETH", "spi": {"id": 1}}}, "is not on SPI"),
        ({"lan": {"phy": "OPENETH", "ipv4": "10.0.0.2"}}, "with its prefix"),
        ({"lan": {"phy": "OPENETH", "gateway": "10.0.0.300"}}, "lan gateway must be an IPv4 address"),
        ({"lan": {"phy": "OPENETH", "ref_clk_mode": "OUT"}}, 'ref_clk_mode must be "in" or "out"'),
        ({"lan": {"phy": "OPENETH", "mask": "x"}}, "unknown lan setting 'mask'"),
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
