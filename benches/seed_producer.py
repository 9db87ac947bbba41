"""The seed producer's work (the tutorial coincap-stream replaces, docs/tutorial.md), ported faithfully for
the benchmark: `get_asset_data()` and the batch-building loop with its progress print. Only the
Event Hubs connection and `send_batch` are left out.

Differences from the seed, all needed to run it here:
- the URL is the local CoinCap v3 stand-in (argv) instead of the dead v2 API, and the request carries
  the v3 bearer key, as any v3 port must;
- the batch is an `EventDataBatch` built without a connection, with a size limit large enough for
  2000 events (`producer.create_batch()` would take the hub's limit: 1 MB on the Standard tier).

Usage: seed_producer.py URL ITERATIONS WARMUP RESULT_JSON [--no-print]
Writes {"wall_ms": [...], "cpu_ms": [...], "events": n} (one entry per measured iteration);
wall time from time.perf_counter, CPU time (user + system, this process) from time.process_time.
"""

import json
import sys
import time

import requests
from azure.eventhub import EventData, EventDataBatch

URL = sys.argv[1]
API_KEY = "bench-key"


def get_asset_data():
    url = URL
    payload = {}
    headers = {"Authorization": "Bearer " + API_KEY}
    response = requests.request("GET", url, headers=headers, data=payload)
    asset_data = json.loads((response.text))
    assets = []
    ts = asset_data["timestamp"]
    for asset in asset_data["data"]:
        asset["timestamp"] = ts
        assets.append(json.dumps(asset))
    return assets


def run(progress):
    # The seed: `event_data_batch = await producer.create_batch()`, then the data.
    event_data_batch = EventDataBatch(max_size_in_bytes=64 * 1024 * 1024)
    stream_data = get_asset_data()
    for i in stream_data:
        event_data_batch.add(EventData(i))
        if progress:
            print(f"\rCoins sent to EventHub: {stream_data.index(i)+ 1}", end="", flush=True)
    # `await producer.send_batch(event_data_batch)` is left out: no Event Hubs here.
    return len(event_data_batch)


def main():
    iterations, warmup, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    progress = "--no-print" not in sys.argv[5:]
    wall, cpu, events = [], [], 0
    for n in range(warmup + iterations):
        w0, c0 = time.perf_counter(), time.process_time()
        events = run(progress)
        w1, c1 = time.perf_counter(), time.process_time()
        if n >= warmup:
            wall.append((w1 - w0) * 1000.0)
            cpu.append((c1 - c0) * 1000.0)
    with open(out, "w") as f:
        json.dump({"wall_ms": wall, "cpu_ms": cpu, "events": events}, f)


if __name__ == "__main__":
    main()
