"""firmware/board.py as it is, on the sim's fakes of the ESP32 port's modules (host_tests/sim/),
with the radio scripted (sim/_simlink.py): the Wi-Fi join with its retries and backoff, a wrong
password told once with its fix, a link that drops and comes back while the server keeps
listening, the clock set by NTP at start-up (and a server that never answers: a bounded wait,
then the board serves), the watchdog resetting a board whose event loop is blocked,
machine.reset(), and what /status says about each. Every board here is a dedicated sim (home
namespace, 127.0.0.1)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from harness import simrun
from harness.paths import APPS_BOARD, HOST_TESTS
from harness.simboard import SimBoard, free_port, wait_listening
from harness.target import RawConn, get_status, wait_for

JOIN_FAILS = 3  # the access point refuses the first joins; board.py waits 1, 2, 4 s between them


@pytest.fixture
def sims(request, tmp_path):
    """sims(settings={...}, radio={...}, wait=True) -> a started SimBoard running the test app
    apps_board/ (its folder, log: tmp_path/sim<n>, sim<n>.log); all stopped after the test."""
    if request.config.getoption("--board-ip"):
        pytest.skip("needs sim boards of its own")
    started = []

    def start(settings=None, radio=None, wait=True, timeout=10.0):
        n = len(started)
        path = tmp_path / ("settings%d.json" % n)
        path.write_text(json.dumps(dict({"hostname": "simboard"}, **(settings or {}))))
        sim = SimBoard(heap=request.config.getoption("--sim-heap"), firmware=request.config.getoption("--sim-firmware"),
                       settings=str(path), extra_path=[APPS_BOARD], log=str(tmp_path / ("sim%d.log" % n)),
                       radio=radio, home=tmp_path / ("sim%d" % n))
        started.append(sim)
        return sim.start(timeout, wait)

    yield start
    for sim in started:
        sim.stop()


def log(sim):
    with open(sim.log) as f:
        return f.read()


def connects(sim):
    return [t for t, kind, _ in sim.events if kind == "connect"]


def test_join_retries_with_doubling_waits_then_serves(sims):
    sim = sims(radio={"fail_joins": JOIN_FAILS}, timeout=30)
    text = log(sim)
    fails = re.findall(r"attempt (\d) failed \(no access point found, status 201\); retry in (\d+) s", text)
    assert fails == [("1", "1"), ("2", "2"), ("3", "4")], text
    assert text.count("no access point 'nostall-sim' in range") == 1, text  # the fix, told once
    assert "Wi-Fi 'nostall-sim' connected, IP 127.0.0.1" in text, text
    # the waits are real: each join starts a failed join (fail_ms 300) plus the wait after the last
    t = connects(sim)
    assert len(t) == JOIN_FAILS + 1, sim.events
    for gap, wait in zip([b - a for a, b in zip(t, t[1:])], (1, 2, 4)):
        assert wait < gap < wait + 1.5, (gap, wait)
    s = get_status(sim.url)
    assert s["reset_cause"] == "pwron" and s["wifi_rssi_dbm"] == -60, s
    w = requests.get(sim.url + "/board/wifi", timeout=5).json()
    assert w["status"] == 1010 and w["isconnected"] and w["pm"] == 0 and w["hostname"] == "simboard", w


def test_wrong_password_is_told_once_with_its_fix(sims):
    sim = sims(radio={"password": "not-what-the-board-says"}, wait=False)
    assert wait_for(lambda: "attempt 3 failed" in log(sim), 15, 0.1), log(sim)
    text = log(sim)
    fails = re.findall(r"attempt (\d) failed \(wrong password, status 202\); retry in (\d+) s", text)
    assert fails[:3] == [("1", "1"), ("2", "2"), ("3", "4")], text
    fixes = re.findall(r"nostall: Wi-Fi: the access point 'nostall-sim' refused the password: correct "
                       r'"wifi": \{"password": \.\.\.\} in /settings.json', text)
    assert len(fixes) == 1, text
    # the access point takes the board's password now: the port's own re-try joins, the board serves
    sim.radio()
    wait_listening(sim.host, sim.port, sim.proc, 10)
    assert get_status(sim.url)["wifi_rssi_dbm"] == -60
    assert log(sim).count("refused the password") == 1


def test_link_drops_and_returns_while_the_server_keeps_listening(sims):
    sim = sims()
    kept = RawConn(sim.host, sim.port)
    assert kept.request("GET", "/api/led").status == 200  # a keep-alive connection from before
    down_s = 3
    sim.radio(drop_after_s=0.5, down_s=down_s, ip_after="127.0.0.2")
    back_at = time.monotonic() + 0.5 + down_s
    # the board sees the link go: /status loses the signal strength, the log says so
    assert wait_for(lambda: "wifi_rssi_dbm" not in get_status(sim.url), 3 + 0.5, 0.1)
    assert wait_for(lambda: "link lost; reconnecting" in log(sim), 3, 0.1), log(sim)
    # back: the port's own re-tries find the access point again, within a few seconds
    assert wait_for(lambda: "wifi_rssi_dbm" in get_status(sim.url), down_s + 5, 0.1)
    assert -0.2 < time.monotonic() - back_at < 3.0, time.monotonic() - back_at
    # board.py's join loop sees it at its next look, at the new address; the server never listened anew
    assert wait_for(lambda: "connected, IP 127.0.0.2" in log(sim), 5, 0.1), log(sim)
    t0 = time.monotonic()
    assert kept.request("GET", "/api/led").status == 200  # the same connection, answered again
    assert requests.get(sim.url + "/api/led", timeout=5).status_code == 200
    assert time.monotonic() - t0 < 2.0
    kept.close()
    text = log(sim)
    assert text.count("serving http://") == 1 and "Traceback" not in text, text
    assert "check \"wifi\"" not in text, text  # its settings had worked: no fix to suggest
    assert sim.restarts == []
    w = requests.get(sim.url + "/board/wifi", timeout=5).json()
    assert w["ifconfig"][0] == "127.0.0.2" and w["status"] == 1010, w


def test_ethernet_from_the_lan_settings(sims):
    """A "lan" section brings up network.LAN (the fake: link, then DHCP) instead of Wi-Fi; a PHY
    the chip cannot have (RMII on a C3: the port's driver install fails, and on the QEMU image a
    second LAN() after that failure crashed the board) is one settings line, tried once, and the
    board serves nothing."""
    sim = sims(settings={"lan": {"phy": "W5500", "spi": {"id": 1, "sck": 6, "mosi": 7, "miso": 2}, "cs": 10, "int": 3}})
    s = get_status(sim.url)
    assert s["network"] == "lan" and "wifi_rssi_dbm" not in s, s
    text = log(sim)
    assert "nostall: Ethernet (W5500) up, IP 127.0.0.1" in text and "Wi-Fi" not in text, text
    assert [a for _, kind, a in sim.events if kind == "lan"] == [["102"]] and not connects(sim), sim.events
    bad = sims(settings={"lan": {"phy": "LAN8720", "mdc": 23, "mdio": 18}}, wait=False)
    assert wait_for(lambda: "nostall: settings: Ethernet LAN8720 refused" in log(bad), 10, 0.1), log(bad)
    assert "an RMII PHY needs an ESP32" in log(bad) and "serving" not in log(bad)


def ntp_queries(sim):
    return [(t, a) for t, kind, a in sim.events if kind == "ntp"]


def test_ntp_sets_the_clock_after_the_network_is_up(sims):
    sim = sims(settings={"ntp": "pool.ntp.org"})
    text = log(sim)
    assert re.search(r"nostall: clock set by NTP 'pool.ntp.org': 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", text), text
    # once, after the join and before the server listens
    assert text.index("connected, IP") < text.index("clock set by NTP") < text.index("serving http://"), text
    q = ntp_queries(sim)
    assert [a for _, a in q] == [["pool.ntp.org"]] and connects(sim)[-1] < q[0][0], sim.events
    r = requests.get(sim.url + "/api/led", timeout=5)
    assert r.status_code == 200 and r.headers["date"].endswith(" GMT"), r.headers
    # without "ntp" no query at all (ntptime is not even imported)
    plain = sims()
    assert not ntp_queries(plain) and "NTP" not in log(plain), log(plain)


def test_ntp_without_an_answer_delays_start_up_a_bounded_time_then_the_board_serves(sims):
    sim = sims(settings={"ntp": "192.0.2.123"}, radio={"ntp_fail": True}, timeout=20)
    text = log(sim)
    fails = re.findall(r"nostall: NTP '192.0.2.123': try (\d) of 3 failed \(OSError\((\d+)", text)
    assert [n for n, _ in fails] == ["1", "2", "3"], text
    assert "NTP '192.0.2.123': no answer; serving without a Date header until the next start" in text, text
    assert "clock set" not in text and "Traceback" not in text and text.count("serving http://") == 1, text
    # three queries of ntptime.timeout (1 s) each, 0.5 s apart: start-up waits about 4 s, no more
    t = [t for t, _ in ntp_queries(sim)]
    assert len(t) == 3, sim.events
    for gap in (b - a for a, b in zip(t, t[1:])):
        assert 1.4 < gap < 2.5, t
    assert get_status(sim.url)["requests"] >= 0 and sim.restarts == []
    # a server that answers the third query: the clock is set then
    late = sims(settings={"ntp": "pool.ntp.org"}, radio={"ntp_fail": 2}, timeout=20)
    text = log(late)
    assert "try 1 of 3 failed" in text and "try 2 of 3 failed" in text and "try 3 of 3" not in text, text
    assert "clock set by NTP 'pool.ntp.org'" in text and len(ntp_queries(late)) == 3, text


def test_blocked_event_loop_watchdog_resets_the_board(sims):
    sim = sims(settings={"watchdog_ms": 1500})
    first = sim.pid
    assert get_status(sim.url)["reset_cause"] == "pwron"
    t0 = time.monotonic()
    with pytest.raises(requests.RequestException):
        requests.get(sim.url + "/board/block?ms=10000", timeout=8)  # the board dies under it
    assert time.monotonic() - t0 < 4.0  # the watchdog fired, long before the handler's 10 s
    restarts = sim.runner.wait_restarts(1, 5)
    assert [c for _, c in restarts] == [simrun.WDT_RESET], restarts
    wait_listening(sim.host, sim.port, sim.proc, 10)
    s = get_status(sim.url)
    assert s["reset_cause"] == "wdt" and s["uptime_ms"] < 5000 and sim.pid != first, s
    metrics = requests.get(sim.url + "/metrics", timeout=5).text
    assert 'nostall_reset_cause{cause="wdt"} 1' in metrics
    assert "watchdog: no feed for 1500 ms" in log(sim)
    # fed again by the new process: no second reset while it idles past the timeout
    time.sleep(2.0)
    assert len(sim.restarts) == 1 and get_status(sim.url)["reset_cause"] == "wdt"


def test_machine_reset_restarts_the_board_on_the_same_flash(sims):
    sim = sims()
    first = sim.pid
    with open(sim.cwd + "/note.txt", "w") as f:  # a file on the board's flash
        f.write("kept")
    with pytest.raises(requests.RequestException):
        requests.get(sim.url + "/board/reset", timeout=5)
    assert [c for _, c in sim.runner.wait_restarts(1, 5)] == [simrun.HARD_RESET]
    wait_listening(sim.host, sim.port, sim.proc, 10)
    s = get_status(sim.url)
    assert s["reset_cause"] == "hard" and sim.pid != first, s  # esp_restart(): ESP_RST_SW, HARD_RESET
    with open(sim.cwd + "/note.txt") as f:
        assert f.read() == "kept"
    assert log(sim).count("serving http://") == 2


def test_make_sim_stops_cleanly_on_ctrl_c(tmp_path):
    # `make sim`: the runner in the foreground; Ctrl-C reaches it, it passes one SIGINT on
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "harness.simboard", "--port", str(port)], cwd=HOST_TESTS,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_listening("127.0.0.1", port, p, 15)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:  # stuck: the runner and the MicroPython it started, by PID
            kids = _children(p.pid)
            p.kill()
            p.wait()
            for pid in kids:
                _kill(pid)
    assert p.returncode == 0, out
    assert "nostall: stopping" in out and "nostall: stopped" in out, out
    with pytest.raises(OSError):
        RawConn("127.0.0.1", port, timeout=1)


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % d) as f:
                if d.isdigit() and int(f.read().rpartition(")")[2].split()[1]) == pid:
                    kids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return kids


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
