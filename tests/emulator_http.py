"""Plain HTTP calls to a running PanDA emulator, for the emulator's own tests."""

from __future__ import annotations

import time

import requests

J = {"Accept": "application/json"}


def post(emu, path, payload):
    r = requests.post(f"{emu.base_url}/{path}", json=payload, headers=J, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def get(emu, path, params=None):
    r = requests.get(f"{emu.base_url}/{path}", params=params, headers=J, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")
