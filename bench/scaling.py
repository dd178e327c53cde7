"""Scaling: status-change throughput with 1 and 2 instances of the leads service and of the gateway.

The same load as the headline figure (`--scaling-requests` fresh leads, `--concurrency` in flight,
after a warm-up) on the same stack, in four shapes: 1 leads + 1 gateway, 2 leads + 1 gateway,
1 leads + 2 gateways (the load split over both), 2 + 2. Every extra process is started for its
shape and stopped after it. On this 2-core machine the figure shows what bounds the pipeline:
more processes on the same cores add no CPU, only scheduling.
"""

import argparse
import asyncio
import time
from typing import Any

from bench import checks, seed
from bench.driver import Sample, client, drive, update_jobs
from bench.processes import wait_consuming
from tests.support.stack import Stack, free_port, wait_http

SHAPES = ((1, 1), (2, 1), (1, 2), (2, 2))  # (leads instances, gateways)


async def _gateway(stack: Stack) -> str:
    port = free_port()
    stack.start("gateway_2", "services.gateway", GATEWAY_PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    await wait_http(url + "/readyz", 30, "the second gateway")
    return url


async def _load(urls: list[str], database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    count, warm = args.scaling_requests, min(100, args.scaling_requests // 5)
    async with client(args.concurrency, args.request_timeout) as http:
        ids = await seed.via_gateway(http, urls[0], token, warm + count, args.concurrency)
        await checks.wait_projected(database_url, org, len(ids), args.event_timeout)
        share = args.concurrency // len(urls)
        parts = [ids[warm:][i :: len(urls)] for i in range(len(urls))]
        await drive(http, f"{urls[0]}/api/leads/update-status", token, update_jobs(ids[:warm]), args.concurrency)
        started = time.perf_counter()
        samples: list[list[Sample]] = await asyncio.gather(
            *(
                drive(http, f"{url}/api/leads/update-status", token, update_jobs(part), share)
                for url, part in zip(urls, parts, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
    flat = [s for part in samples for s in part]
    latencies = sorted((s.done - s.sent) * 1000 for s in flat)
    return {
        "requests": len(flat),
        "errors": sum(1 for s in flat if s.status != 200),
        "throughput": round(len(flat) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
    }


async def measure(stack: Stack, amqp_url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for leads, gateways in SHAPES:
        if leads == 2 and "leads_2" not in stack.processes:
            stack.start("leads_2", "services.leads")
            await wait_consuming(stack.processes["leads_2"], amqp_url, "leads")
        if leads == 1 and "leads_2" in stack.processes:
            await asyncio.to_thread(stack.processes.pop("leads_2").stop)
        urls = [stack.url]
        if gateways == 2:
            urls.append(await _gateway(stack) if "gateway_2" not in stack.processes else figures["_url2"])
            figures["_url2"] = urls[1]
        figures[f"{leads}x{gateways}"] = await _load(urls, database_url, args)
    for name in ("leads_2", "gateway_2"):
        if name in stack.processes:
            await asyncio.to_thread(stack.processes.pop(name).stop)
    figures.pop("_url2", None)
    base = figures["1x1"]["throughput"]
    for shape in figures.values():
        shape["ratio"] = round(shape["throughput"] / base, 2) if base else None
    return figures


def render(figures: dict[str, Any] | None, concurrency: int) -> list[str]:
    if not figures:
        return []
    lines = [
        "",
        f"scaling (status change, {concurrency} in flight, fresh leads each):",
        "| leads instances x gateways | req/s | HTTP p50 | vs 1x1 | errors |",
        "|---|---|---|---|---|",
    ]
    for shape, f in figures.items():
        lines.append(f"| {shape} | {f['throughput']} | {f['p50_ms']} ms | {f['ratio']}x | {f['errors']} |")
    return lines


def failed(figures: dict[str, Any] | None) -> bool:
    return figures is not None and any(f["errors"] for f in figures.values())
