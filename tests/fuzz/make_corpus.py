#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpora for the fuzz targets (tests/fuzz/corpus/*).

Requests are real MessagePack-RPC streams for every method; most WAL seeds are built from them by
the server itself (run an allotd, then copy a segment). Here: the request and JSON seeds, and the
WAL regression seeds (REGRESSIONS below), coded from the payload format (core/event/codec.c and
the codec files it names), each written twice: as a WAL region (record header and CRC-32C,
persist/wal.c) and as the fuzz target's series of events ([u8 type][u16 length][payload],
tests/fuzz/fuzz_wal_record.c). Type bytes come from the event table, core/events.def.
Run from the repository root: python3 tests/fuzz/make_corpus.py
"""
import json
import os
import re
import struct

class Pairs(list):
    """A map given as (key, value) pairs, so that a key can repeat (dicts cannot say that)."""

def pack_str(b):
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + struct.pack(">H", len(b)) + b

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
    # four shipments fill the order's array: the reject grows it (once a SIGSEGV)
    "regression-reject-four-shipments":
        [("location.put", {"id": "L%d" % i, "type": "warehouse", "lat": 50.0, "lon": 8.0,
                           "priority": i}) for i in range(5)] +
        [("stock.set", {"sku": "X", "location": "L%d" % i, "on_hand": 1}) for i in range(5)] +
        [("order.create", {"id": "o1", "lines": [{"sku": "X", "qty": 4}], "policy": "priority"}),
         ("shipment.reject", {"order": "o1", "shipment": "S1"})],
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
    # every argument of the hot methods (net/args_typed.h), nil ones, limits and one past
    "typed-args": SETUP + [
        ("reserve", {"id": "t1", "lines": [{"sku": "A", "qty": 1, "backorder": True},
                                           {"sku": "B", "qty": 1 << 40, "backorder": None}],
                     "ttl_s": 86400, "method": "ship", "ship_to": {"lat": -90, "lon": 180.0},
                     "location": None, "policy": "nearest", "partial": True, "replace": False,
                     "customer": "u1", "token": ""}),
        ("reserve", {"id": "t2", "lines": [{"sku": "A", "qty": (1 << 40) + 1}], "ttl_s": 0}),
        ("avail.get", {"skus": ["A", "B"], "method": "pickup", "ship_to": {"lat": 52.3, "lon": 4.8},
                       "radius_km": 0.001, "location": "S1", "detail": True, "promise": False}),
        ("avail.get", {"skus": ["A"], "min_index": 0, "wait_ms": 0}),
        ("avail.get", {"skus": ["A"], "radius_km": None, "ship_to": {"lat": 91.0, "lon": 0}}),
        ("order.create", {"id": "t3", "customer": "u1", "lines": [{"sku": "A", "qty": 1}],
                          "method": "ship", "ship_to": {"lat": 52.3, "lon": 4.8},
                          "policy": "priority", "address": {"city": "Amsterdam", "zip": 1011},
                          "instructions": "leave at the door"}),
        ("order.create", {"id": "t4", "lines": [{"sku": "A", "qty": 1}],
                          "address": {"line1": "x" * 4100}})],
}

# ---- WAL regression seeds ---------------------------------------------------------------------

T0 = 1700000000000  # ms
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

def s_(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b

def i64(v):
    return struct.pack("<q", v)

def event_types(path=os.path.join("core", "events.def")):
    """{NAME: type byte} from the rows X(number, NAME, ...) of the event table."""
    with open(path) as f:  # the event rows come before the checkpoint kinds' table
        text = f.read().split("#define ALLOT_SNAPSHOT_KINDS")[0]
        rows = re.findall(r"\bX\((\d+),\s*([A-Z_]+),", text)
    types = {name: int(number) for number, name in rows}
    assert len(types) == len(rows) == len(set(types.values())), "events.def rows are distinct"
    return types

TYPE = event_types()

def event(name, body):
    return (TYPE[name], b"\x01" + body)  # every payload starts with the format version

def location_put(id_, priority=0):
    return event("LOCATION_PUT", s_(id_) + bytes([0, 0b101]) + struct.pack("<dd", 50.0, 8.0) +
                 i64(priority) + struct.pack("<d", 0.0) + i64(0))

def stock_set(sku, location, on_hand):
    return event("STOCK_SET", s_(sku) + s_(location) + i64(on_hand) + i64(0) + i64(I64_MIN))

def stock_adjust(sku, location, delta, after, at_ms, key):
    return event("STOCK_ADJUST",
                 s_(sku) + s_(location) + i64(delta) + i64(after) + i64(at_ms) + s_(key))

def hold_body(id_, created_ms, lines):
    body = s_(id_) + struct.pack("<Q", 7) + i64(created_ms) + i64(created_ms + 60000)
    body += struct.pack("<H", len(lines))
    for sku, allocations in lines:
        body += s_(sku) + i64(sum(q for _, q in allocations)) + struct.pack("<H", len(allocations))
        for location, qty in allocations:
            body += s_(location) + i64(qty)
    return body

def reservation_create(id_, created_ms, lines):
    return event("RESERVATION_CREATE", hold_body(id_, created_ms, lines))

def reservation_extend(id_, expires_at_ms, at_ms):
    return event("RESERVATION_EXTEND", s_(id_) + i64(expires_at_ms) + i64(at_ms))

def reservation_release(id_, at_ms):
    return event("RESERVATION_RELEASE", s_(id_) + bytes([1]) + i64(at_ms))

def reservation_snapshot(id_, status, ended_ms, created_ms, lines):
    return event("RESERVATION_SNAPSHOT",
                 bytes([status]) + i64(ended_ms) + hold_body(id_, created_ms, lines))

def items(pairs):
    return struct.pack("<H", len(pairs)) + b"".join(s_(sku) + i64(q) for sku, q in pairs)

def order_create(id_, created_ms, line, shipments):
    """shipments: [(location, [(sku, qty)])]; state created, policy priority."""
    body = s_("") + s_(id_) + s_("") + struct.pack("<Q", 9) + i64(created_ms) + i64(0)
    body += bytes([0, 0, 0, 0, 1, 0]) + struct.pack("<dd", 0.0, 0.0) + s_("") + s_("") + s_("")
    body += items([line])
    body += struct.pack("<H", len(shipments))
    first = 0
    for location, its in shipments:
        body += s_(location) + bytes([0]) + s_("") + s_("") + struct.pack("<HH", first, len(its))
        first += len(its)
    body += items([it for _, its in shipments for it in its])
    body += struct.pack("<HH", 0, 0)  # no returns, no history
    return event("ORDER_CREATE", body)

def shipment_reject(order, at_ms, shipment, moved):
    """moved: [(location, [(sku, qty)])] = the new shipments."""
    body = s_(order) + i64(at_ms) + struct.pack("<H", shipment) + bytes([0]) + s_("")
    body += struct.pack("<H", len(moved))
    for location, its in moved:
        body += s_(location) + items(its)
    return event("SHIPMENT_REJECT", body)

def supply_put(id_, sku, location, qty, eta_ms, at_ms):
    return event("SUPPLY_PUT", s_(id_) + s_(sku) + s_(location) + i64(qty) + i64(eta_ms) +
                 i64(at_ms))

def supply_receive(id_, sku, location, qty, on_hand_after, at_ms):
    return event("SUPPLY_RECEIVE", s_(id_) + s_(sku) + s_(location) + i64(qty) +
                 i64(on_hand_after) + i64(at_ms))

def supply_cancel(id_, at_ms):
    return event("SUPPLY_CANCEL", s_(id_) + i64(at_ms))

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def wal_region(events):
    out = b""
    for lsn, (type_, payload) in enumerate(events, 1):
        record = struct.pack("<IQq", len(payload), lsn, T0) + bytes([type_]) + payload
        out += record + struct.pack("<I", crc32c(record))
    return out

def event_series(events):
    return b"".join(bytes([t]) + struct.pack("<H", len(p)) + p for t, p in events)

FIVE_LOCATIONS = [location_put("L%d" % i, i) for i in range(5)] + \
                 [stock_set("X", "L%d" % i, 1) for i in range(5)]
REGRESSIONS = {
    # a key stamped near INT64_MAX, then one near INT64_MIN: the age eviction subtracted them
    "adjust-key-times-at-int64-limits": [
        location_put("W1"), stock_adjust("A", "W1", 1, 1, T0, "k0"),
        stock_adjust("A", "W1", 1, 2, 7060550205596237823, "k1"),
        stock_adjust("A", "W1", 1, 3, -9007303708194701312, "k2"),
        stock_adjust("A", "W1", 1, 4, I64_MAX, "k3"), stock_adjust("A", "W1", 1, 5, I64_MIN, "k4")],
    # likewise for the tombstones of released holds, and an extend to the end of time
    "tombstone-times-at-int64-limits": [
        location_put("W1"), stock_set("A", "W1", 10),
        reservation_create("t0", T0, [("A", [("W1", 1)])]), reservation_release("t0", T0),
        reservation_create("t1", T0, [("A", [("W1", 1)])]),
        reservation_extend("t1", I64_MAX, T0), reservation_release("t1", I64_MIN),
        reservation_release("t1", I64_MAX), reservation_release("t1", T0 + 1)],
    # an ended hold's snapshot has no lines: its empty block must not be offset from NULL
    "tombstone-snapshot-without-lines": [
        reservation_snapshot("gone", 1, T0, T0 - 1000, [])],
    # four shipments fill the order's array: the reject grows it while reading the rejected one
    "reject-of-a-full-shipment-array": FIVE_LOCATIONS + [
        order_create("o1", T0, ("X", 4), [("L%d" % i, [("X", 1)]) for i in range(4)]),
        shipment_reject("o1", T0 + 1, 0, [("L4", [("X", 1)])])],
    # future supply: a put, a delay, a partial receipt, the rest, a cancel of another, and
    # records the state refuses (receipt past the rest, cancel of a received supply)
    "supply-put-receive-cancel": [
        location_put("W1"), stock_set("A", "W1", 3),
        supply_put("PO-1", "A", "W1", 10, T0 + 86400000, T0),
        supply_put("PO-1", "A", "W1", 10, T0 + 2 * 86400000, T0 + 1),
        supply_receive("PO-1", "A", "W1", 4, 7, T0 + 2), supply_receive("PO-1", "A", "W1", 7, 14, T0 + 3),
        supply_receive("PO-1", "A", "W1", 6, 13, T0 + 4), supply_cancel("PO-1", T0 + 5),
        supply_put("PO-2", "A", "W1", 1, I64_MAX, T0), supply_put("PO-2", "B", "W1", 1, T0, T0),
        supply_cancel("PO-2", T0 + 6)],
}

def write_wal_seeds(base):
    for name, events in REGRESSIONS.items():
        with open(os.path.join(base, "wal", "regression-%s.wal" % name), "wb") as f:
            f.write(wal_region(events))
        with open(os.path.join(base, "wal", "regression-%s.events" % name), "wb") as f:
            f.write(event_series(events))

def main():
    base = os.path.join("tests", "fuzz", "corpus")
    write_wal_seeds(base)
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
