"""A warm request to ``artstyle serve`` against the network time of the same engine.

Starts ``artstyle serve --model MODEL`` on loopback, warms it with the photo, then sends --rounds
requests one at a time (a 1024 px JPEG up, a PNG back) and compares their median wall time with
the median time the same engine takes in this process to paint the decoded photo (the network,
with its conversions). Then --clients clients at once send --rounds requests each and the server's
/api/health reports, every 50 ms, how many wait: the queue must stay within --queue (503 above).

    python benchmarks/serve_latency.py --photo ../shared/data/photos/adain_chicago.jpg \\
        --json benchmarks/serve_latency.json
"""

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image, ImageOps

from artstyle import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", required=True)
    parser.add_argument("--model", default="baroque-fast")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    photo = ImageOps.fit(Image.open(args.photo).convert("RGB"), (args.size, args.size))
    upload = io.BytesIO()
    photo.save(upload, "JPEG", quality=92)
    stylizer = load(args.model)
    stylizer(photo)  # warm: compiled for the shape
    network = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        stylizer(photo)
        network.append(time.perf_counter() - start)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "artstyle", "serve", "--port", str(port), "-m", args.model,
                               "--queue", str(args.queue), "-q"])
    try:
        deadline = time.time() + 300
        while True:
            try:
                httpx.get(f"{url}/api/health", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.3)
        movement = httpx.get(f"{url}/api/movements").json()[0]["id"]

        def request(client: httpx.Client) -> tuple[int, float]:
            start = time.perf_counter()
            response = client.post(f"{url}/api/stylize", files={"image": ("photo.jpg", upload.getvalue())},
                                   data={"movement": movement, "format": "png", "max_size": str(args.size)},
                                   timeout=300)
            return response.status_code, time.perf_counter() - start

        with httpx.Client() as client:
            request(client)  # warm
            alone = [request(client)[1] for _ in range(args.rounds)]
        waiting: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    waiting.append(int(client.get(f"{url}/api/health").json()["waiting"]))
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()

        def one_client(_: int) -> list[int]:
            with httpx.Client() as client:
                return [request(client)[0] for _ in range(args.rounds)]

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            statuses = [s for got in pool.map(one_client, range(args.clients)) for s in got]
        parallel_s = time.perf_counter() - start
        stop.set()
        watcher.join()
    finally:
        server.terminate()
        server.wait()
    net, req = statistics.median(network), statistics.median(alone)
    report = {
        "model": args.model, "size": args.size, "engine": stylizer.engines_used(), "precision": stylizer.precision,
        "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"), "network_median_s": round(net, 3),
        "request_median_s": round(req, 3), "request_over_network": round(req / net, 2),
        "parallel": {"clients": args.clients, "requests": len(statuses), "seconds": round(parallel_s, 1),
                     "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                     "most_waiting": max(waiting, default=0), "queue": args.queue},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
