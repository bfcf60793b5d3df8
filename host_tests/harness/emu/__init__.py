"""Board TCP emulator: real lwIP (ESP32 options) between test clients and the firmware. The
gateway itself (C) is in host_tests/lwipgw/."""
