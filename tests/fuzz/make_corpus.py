#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpora for the fuzz targets (tests/fuzz/corpus/*).

Requests are real MessagePack-RPC streams for every method; WAL seeds are built from them by the
server itself (run an allotd, then copy a segment), so here only the request and JSON seeds are
generated. Run from the repository root: python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct

class Pairs(list):
    """A map given as (key, value) pairs, so that a key can repeat (dicts cannot say that)."""

def pack_str(b):
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    return b"\xd9" + bytes([len(b)]) + b

def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        return pack_str(v.encode())
    if isinstance(v, bytes):  # a str of any bytes, valid UTF-8 or not
        return pack_str(v)
    if isinstance(v, Pairs):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v)
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)

def request(msgid, method, params):
    return pack([0, msgid, method, [params]])

LOC = {"id": "W1", "type": "warehouse", "lat": 52.37, "lon": 4.89, "priority": 1}
STORE = {"id": "S1", "type": "store", "lat": 52.36, "lon": 4.9, "pickup": True,
         "same_day_radius_km": 20.0, "daily_capacity": 3}
SETUP = [("location.put", LOC), ("location.put", STORE),
         ("stock.set", {"sku": "A", "location": "W1", "on_hand": 10, "safety_stock": 1}),
         ("stock.set", {"sku": "B", "location": "S1", "on_hand": 5, "as_of_ms": 1700000000000})]
SCENARIOS = {
    "ping": [("ping", {})],
    "info": [("server.info", {})],
    "stock": SETUP + [("stock.adjust", {"sku": "A", "location": "W1", "delta": -2, "key": "k1"}),
                      ("stock.get", {"sku": "A"})],
    "avail": SETUP + [("avail.get", {"skus": ["A", "B", "Z"], "detail": True}),
                      ("avail.get", {"skus": ["B"], "method": "pickup",
                                     "ship_to": {"lat": 52.3, "lon": 4.8}, "radius_km": 30}),
                      ("avail.get", {"skus": ["B"], "method": "same_day",
                                     "ship_to": {"lat": 52.3, "lon": 4.8}})],
    "reserve": SETUP + [("reserve", {"id": "c1", "lines": [{"sku": "A", "qty": 2},
                                                           {"sku": "B", "qty": 1}],
                                     "policy": "priority", "ttl_s": 60}),
                        ("reserve", {"id": "c1", "lines": [{"sku": "A", "qty": 3}],
                                     "replace": True}),
                        ("reservation.extend", {"id": "c1", "ttl_s": 120}),
                        ("reservation.get", {"id": "c1"}),
                        ("reservation.release", {"id": "c1"})],
    "orders": SETUP + [("reserve", {"id": "c2", "lines": [{"sku": "A", "qty": 1}]}),
                       ("order.create", {"id": "o1", "reservation": "c2", "customer": "u1"}),
                       ("order.pay", {"id": "o1", "status": "authorized"}),
                       ("order.release", {"id": "o1"}),
                       ("order.get", {"id": "o1"}),
                       ("order.list", {"customer": "u1"})],
    "bad": [("ping", {"x": 1}), ("nope", {}), ("reserve", {"id": "", "lines": []})],
}
# Requests whose error replies echo client bytes, and keys given twice (request seeds only).
RAW_SCENARIOS = {
    "echo": SETUP + [(b"\xff\xfe", {}),
                     ("ping", Pairs([(b"\xff\xfe", 1)])),
                     ("ping", {"a" + "\u20ac" * 20: 1}),
                     ("reservation.get", {"id": b"a\x00b\\c\n\xc0\xaf"}),
                     ("order.get", {"id": "\u00e9" * 64}),
                     ("reserve", Pairs([("id", "dupA"), ("lines", [{"sku": "A", "qty": 1}]),
                                        ("id", "dupB")])),
                     ("reserve", {"id": "c3", "lines": [Pairs([("sku", "A"), ("qty", 1),
                                                               ("qty", 5)])]})],
}

def main():
    base = os.path.join("tests", "fuzz", "corpus")
    os.makedirs(os.path.join(base, "request"), exist_ok=True)
    os.makedirs(os.path.join(base, "json"), exist_ok=True)
    for name, calls in SCENARIOS.items():
        stream = b"".join(request(i + 1, m, p) for i, (m, p) in enumerate(calls))
        with open(os.path.join(base, "request", name), "wb") as f:
            f.write(stream)
        with open(os.path.join(base, "json", name + ".json"), "w") as f:
            json.dump([{"method": m, "params": p} for m, p in calls], f)
    for name, calls in RAW_SCENARIOS.items():
        stream = b"".join(request(i + 1, m, p) for i, (m, p) in enumerate(calls))
        with open(os.path.join(base, "request", name), "wb") as f:
            f.write(stream)
    with open(os.path.join(base, "json", "numbers.json"), "w") as f:
        f.write('[0, -1, 9223372036854775807, -9223372036854775808, 1.5e300, "\\u00e9\\ud83d\\ude00"]')

if __name__ == "__main__":
    main()
