# Every limit, its one default, and the refusals with a fix (firmware/nostall/config.py).
# Runs on CPython and on MicroPython.

from unitcheck import raises

from nostall.config import NAMES, Config, ConfigError


def test_every_limit_has_a_unit_in_its_name_and_a_positive_default():
    units = ("_ms", "_bytes", "_count", "_connection", "_connections", "_backlog", "_turnaways")
    for name in NAMES:
        assert name.endswith(units), name
        if name != "max_requests_per_connection":  # 0: no cap, the default
            assert getattr(Config, name) > 0, name
    assert Config.max_requests_per_connection == 0 and Config(max_requests_per_connection=5)
    assert Config().as_dict() == dict((n, getattr(Config, n)) for n in NAMES)


def test_overrides():
    c = Config(max_connections=4, idle_timeout_ms=3000)
    assert c.max_connections == 4 and c.idle_timeout_ms == 3000
    assert Config().max_connections == 6  # the class default is untouched


def test_bad_limits_are_refused_with_a_fix():
    with raises(ConfigError, "unknown limit"):
        Config(max_conections=3)
    with raises(ConfigError, "max_header_bytes=99999 is above its maximum 16384"):
        Config(max_header_bytes=99999)
    with raises(ConfigError, "must not exceed max_header_bytes"):
        Config(max_request_line_bytes=3000, max_header_bytes=2048)
    with raises(ConfigError, "integer"):
        Config(max_connections="4")
    with raises(ConfigError, "integer"):
        Config(idle_timeout_ms=1.5)
    with raises(ConfigError, "below its minimum"):
        Config(max_connections=0)
    assert Config(max_turnaways=0).max_turnaways == 0  # none: turn away at once
