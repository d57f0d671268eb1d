"""The web server under load: 40 clients at once against ``artstyle serve`` on loopback.

Starts ``artstyle serve`` in a subprocess with its defaults (the shipped models, one stylization at
a time, a queue of 16), warms it up, then runs --clients concurrent clients until --requests have
been sent or --seconds have passed. Most requests upload real photos of three sizes (COCO's
224 px, about 640 px, about 1024 px) to four movements; a share are bad requests: not an image, a
truncated JPEG, strength 2, an unknown movement, an unknown page, and a 1 GiB upload declared the
way curl declares one (``Expect: 100-continue``). A client told 503 waits the ``Retry-After``
seconds and sends the same request again. Meanwhile a prober asks /api/health every 100 ms on its
own connection, and a sampler reads the server's resident memory every 50 ms. For the throughput
comparison the same engine paints the same photos in a loop in this process, doing what the server
does for a request (decode, paint, encode). The load comes in --blocks blocks, with a part of the
loop before each and after the last, so that what else the machine does meanwhile weighs on both
alike. Both are warmed first with every photo once (oneDNN prepares its kernels for each new shape).

Reports the status histogram, the p50/p95 latency of accepted (200) requests (queueing included),
/api/health p50/p95 while busy, the server's RSS when warm, its peak, and after 5 s idle, and
accepted requests per second against the in-process loop, with the CPU that other processes on
the machine used during each phase (on a shared machine, compare runs where both phases had as
little). Targets: no 5xx but the designed 503 of a full queue; health p95 < 50 ms; RSS after
within 20% of warm; accepted req/s >= 0.9x the loop.

    python benchmarks/load.py --photos ../shared/data/photos --json benchmarks/load.json
"""

import argparse
import asyncio
import io
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import torch
from PIL import Image

from artstyle.image import encode_image, list_images, open_image
from artstyle.web.app import Entry, Limits, load_entries

MOVEMENTS = ["baroque", "impressionism", "cubism", "expressionism"]
SIZES = {"small": (0, 300), "medium": (500, 800), "large": (1000, 1100)}  # longest side, px


@dataclass(frozen=True)
class Job:
    """One request of the schedule: a photo to paint, or a bad request (``kind`` says which)."""

    kind: str  # "photo" or the bad request's name
    photo: int = 0  # index into the photos
    movement: str = "baroque"
    format: str = "png"


@dataclass
class Results:
    statuses: dict[str, int] = field(default_factory=dict)
    accepted: list[float] = field(default_factory=list)  # latency, s
    accepted_at: list[float] = field(default_factory=list)  # when the answer came, s since the start
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    painted: list[Job] = field(default_factory=list)
    busy_s: float = 0.0  # from each block's start to its last accepted answer, summed


def pick_photos(folder: Path, per_size: int) -> list[tuple[str, str, bytes]]:
    """(size class, file name, JPEG bytes) of ``per_size`` photos of each size class, spread over the folder."""
    chosen = []
    files = list_images(folder)
    for label, (low, high) in SIZES.items():
        fitting = [f for f in files if low <= max(Image.open(f).size) <= high]
        if len(fitting) < per_size:
            raise SystemExit(f"{folder}: only {len(fitting)} photos with a longest side of {low}-{high} px")
        step = len(fitting) / per_size
        chosen += [(label, fitting[int(i * step)].name, fitting[int(i * step)].read_bytes()) for i in range(per_size)]
    return chosen


def schedule(count: int, photos: int, bad_share: float, seed: int = 0) -> list[Job]:
    """``count`` jobs: good ones cycle through the photos (each with a fixed movement and format, so
    any run of ``photos`` good jobs costs the same), bad ones mixed in at random."""
    rng = random.Random(seed)
    bad = ["not an image", "truncated JPEG", "strength 2", "unknown movement", "unknown page", "1 GiB declared"]
    jobs, good = [], 0
    for _ in range(count):
        if rng.random() < bad_share:
            jobs.append(Job(rng.choice(bad)))
        else:
            jobs.append(Job("photo", good % photos, MOVEMENTS[good % photos % len(MOVEMENTS)],
                            "png" if good % photos % 3 else "jpeg"))
            good += 1
    return jobs


async def declared_gigabyte(port: int) -> int:
    """What curl sends for a 1 GiB file: the headers, then it waits for 100 Continue; the status that comes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /api/stylize HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                 b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


async def send(client: httpx.AsyncClient, port: int, job: Job, photos: list[tuple[str, str, bytes]]
               ) -> tuple[int, float]:
    """Send one job; (status, Retry-After seconds or 0)."""
    if job.kind == "1 GiB declared":
        return await declared_gigabyte(port), 0.0
    if job.kind == "unknown page":
        return (await client.get("/api/paint")).status_code, 0.0
    data = photos[job.photo][2]
    fields = {"movement": job.movement, "format": job.format}
    if job.kind == "not an image":
        data = random.Random(len(data)).randbytes(50_000)
    elif job.kind == "truncated JPEG":
        data = data[: len(data) // 2]
    elif job.kind == "strength 2":
        fields["strength"] = "2"
    elif job.kind == "unknown movement":
        fields["movement"] = "pointillism"
    response = await client.post("/api/stylize", files={"image": ("photo.jpg", data, "image/jpeg")}, data=fields)
    return response.status_code, float(response.headers.get("retry-after", 0))


async def load(port: int, jobs: list[Job], photos: list[tuple[str, str, bytes]], clients: int, seconds: float,
               results: Results) -> float:
    """Run ``clients`` concurrent clients over ``jobs`` (each job until it is answered other than 503),
    adding to ``results``; the block's wall seconds."""
    queue = list(reversed(jobs))
    accepted_before = len(results.accepted_at)
    start = time.perf_counter()

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            while queue and time.perf_counter() - start < seconds:
                job = queue.pop()
                while True:
                    began = time.perf_counter()
                    try:
                        status, retry = await send(client, port, job, photos)
                        key = str(status)
                    except httpx.HTTPError as err:
                        status, retry, key = 0, 0.0, f"transport error: {type(err).__name__}"
                    results.statuses[key] = results.statuses.get(key, 0) + 1
                    kind = results.by_kind.setdefault(job.kind, {})
                    kind[key] = kind.get(key, 0) + 1
                    if status != 503:
                        break
                    await asyncio.sleep(retry)
                if status == 200:
                    now = time.perf_counter()
                    results.accepted.append(now - began)
                    results.accepted_at.append(now - start)
                    results.painted.append(job)

    await asyncio.gather(*(one_client() for _ in range(clients)))
    if len(results.accepted_at) > accepted_before:
        results.busy_s += max(results.accepted_at[accepted_before:])
    return time.perf_counter() - start


def probe_health(port: int, stop: threading.Event, out: list[float]) -> None:
    """GET /api/health every 100 ms on one connection until ``stop``; latencies (s) into ``out``."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while not stop.is_set():
            began = time.perf_counter()
            client.get("/api/health").raise_for_status()
            out.append(time.perf_counter() - began)
            stop.wait(0.1)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_rss(pid: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(rss_mib(pid))
        stop.wait(0.05)


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used since it booted (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def paint_in_a_loop(entries: dict[str, Entry], jobs: list[Job], photos: list[tuple[str, str, bytes]]
                    ) -> tuple[float, float, float]:
    """Wall and CPU seconds to decode, paint and encode ``jobs`` in this process, as the server does
    for a request; and the CPU seconds other processes used meanwhile."""
    limits = Limits()
    start, cpu, machine = time.perf_counter(), time.process_time(), machine_cpu_seconds()
    for job in jobs:
        photo = open_image(io.BytesIO(photos[job.photo][2]), max_pixels=limits.max_pixels)
        encode_image(entries[job.movement].stylizer(photo, limits.max_output_side, None), job.format)
    cpu = time.process_time() - cpu
    return time.perf_counter() - start, cpu, machine_cpu_seconds() - machine - cpu


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = info.get("Flags", "").split()
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
    return {"cpu": info.get("Model name", "?").strip(), "cores": os.cpu_count(),
            "flags": [f for f in wanted if f in flags], "python": platform.python_version(), "torch": torch.__version__}


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", required=True, help="a folder of photos (../shared/data/photos)")
    parser.add_argument("--per-size", type=int, default=4, help="photos of each size class")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--requests", type=int, default=300, help="requests in the schedule (503 retries aside)")
    parser.add_argument("--seconds", type=float, default=120, help="no new request after this, in all")
    parser.add_argument("--bad-share", type=float, default=0.15)
    parser.add_argument("--blocks", type=int, default=4, help="the load comes in this many blocks, with a part "
                        "of the in-process loop before each and after the last")
    parser.add_argument("--loop-rounds", type=int, default=2, help="rounds of the photos the loop paints each time")
    parser.add_argument("--server-args", default="", help="more options for artstyle serve, e.g. '--workers 2'")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    photos = pick_photos(Path(args.photos), args.per_size)
    jobs = schedule(args.requests, len(photos), args.bad_share)
    loop_jobs = [j for j in jobs if j.kind == "photo"][: args.loop_rounds * len(photos)]
    entries = {e.id: e for e in load_entries(None, torch.device("cpu"))}
    paint_in_a_loop(entries, loop_jobs[: len(photos)], photos)  # warm: every photo once, as the server
    loop = [0.0, 0.0, 0.0]  # wall, CPU, other processes' CPU (s)

    def paint_a_part() -> None:
        for i, value in enumerate(paint_in_a_loop(entries, loop_jobs, photos)):
            loop[i] += value

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "artstyle", "serve", "--port", str(port), "-q", *args.server_args.split()]
    server = subprocess.Popen(command)
    results = Results()
    try:
        deadline = time.time() + 300
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.5)
        warm_jobs = [j for j in jobs if j.kind == "photo"][: len(photos)]
        asyncio.run(load(port, warm_jobs, photos, 1, 600, Results()))  # every photo once, one at a time
        time.sleep(2)
        warm = rss_mib(server.pid)
        health: list[float] = []
        rss: list[float] = []
        server_cpu = client_cpu = others_cpu = wall = 0.0
        per_block = -(-len(jobs) // args.blocks)
        for block in range(args.blocks):
            paint_a_part()
            stop = threading.Event()
            threads = [threading.Thread(target=probe_health, args=(port, stop, health)),
                       threading.Thread(target=sample_rss, args=(server.pid, stop, rss))]
            for t in threads:
                t.start()
            cpu = cpu_seconds(server.pid), time.process_time(), machine_cpu_seconds()
            wall += asyncio.run(load(port, jobs[block * per_block: (block + 1) * per_block], photos, args.clients,
                                     args.seconds / args.blocks, results))
            stop.set()
            for t in threads:
                t.join()
            server_cpu += cpu_seconds(server.pid) - cpu[0]
            client_cpu += time.process_time() - cpu[1]
            others_cpu += machine_cpu_seconds() - cpu[2]
        others_cpu -= server_cpu + client_cpu
        time.sleep(5)
        after = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    paint_a_part()

    accepted = len(results.accepted)
    loop_count = len(loop_jobs) * (args.blocks + 1)
    server_rate, loop_rate = accepted / results.busy_s, loop_count / loop[0]
    loop_mix = {label: sum(1 for j in loop_jobs if photos[j.photo][0] == label) * (args.blocks + 1)
                for label in SIZES}
    served_mix = {label: sum(1 for j in results.painted if photos[j.photo][0] == label) for label in SIZES}
    server_errors = sum(n for k, n in results.statuses.items() if k.startswith("5") and k != "503")
    health_ms = {"count": len(health), "p50": round(1000 * percentile(health, 50), 1),
                 "p95": round(1000 * percentile(health, 95), 1), "max": round(1000 * max(health), 1)}
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {"clients": args.clients, "requests": args.requests, "seconds": args.seconds,
                     "blocks": args.blocks, "bad_share": args.bad_share,
                     "photos": [f"{label}: {name}" for label, name, _ in photos], "movements": MOVEMENTS,
                     "server": "artstyle serve (defaults: shipped models, --workers 1 --queue 16)"},
        "statuses": dict(sorted(results.statuses.items())),
        "statuses_by_request": results.by_kind,
        "accepted": {"count": accepted, "per_s": round(server_rate, 3), "busy_s": round(results.busy_s, 1),
                     "p50_s": round(percentile(results.accepted, 50), 2),
                     "p95_s": round(percentile(results.accepted, 95), 2), "by_size": served_mix,
                     "server_cpu_s_each": round(server_cpu / max(1, accepted), 3),
                     "client_cores": round(client_cpu / wall, 2), "other_processes_cores": round(others_cpu / wall, 2)},
        "health_while_busy_ms": health_ms,
        "rss_mib": {"warm": round(warm), "peak": round(max(rss)), "after_5s_idle": round(after)},
        "in_process_loop": {"count": loop_count, "per_s": round(loop_rate, 3), "by_size": loop_mix,
                            "cpu_s_each": round(loop[1] / loop_count, 3),
                            "other_processes_cores": round(loop[2] / loop[0], 2)},
        "accepted_vs_loop": round(server_rate / loop_rate, 3),
    }
    report["targets"] = {
        "no 5xx but 503 busy": server_errors == 0,
        "health p95 < 50 ms": health_ms["p95"] < 50,
        "RSS after within 20% of warm": after <= 1.2 * warm,
        "accepted req/s >= 0.9x loop": server_rate >= 0.9 * loop_rate,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
