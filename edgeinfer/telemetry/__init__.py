"""Telemetry: latency percentiles and rates, Jetson power/thermals (jtop, sysfs, tegrastats), Prometheus text."""
from __future__ import annotations
