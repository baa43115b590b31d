"""An open-loop, constant-rate HTTP load generator, run as a process of its own (never inside the server's).

Each stream sends its requests at a constant rate from a common start time, whether or not earlier answers have
come back: request i of a stream is due at start + i / rate, and its latency is counted from that moment, not from
when it could be sent, so a server that falls behind shows it in full (no coordinated omission). One new
connection per request, as the sync workers of gunicorn close each after its answer.

    python scripts/bench/openloop.py plan.json results.json

The plan: {"host", "port", "start_at" (Unix time), "seconds", "streams": [{"name", "rate", "expect": [statuses],
"requests": [{"method", "path", "headers", "body"}]}], "once": [{"name", "at" (seconds after start), "method",
"path", "headers", "body"}]}. A stream takes its requests in order and never sends one twice; it stops early when
they run out (the result says so).
"""

import asyncio
import json
import sys
import time

MAX_IN_FLIGHT = 400
TIMEOUT_S = 30


async def _send(host, port, request):
    """(status, body head) of one request on a new connection."""
    body = (request.get("body") or "").encode()
    head = [f"{request['method']} {request['path']} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (request.get("headers") or {}).items()]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        data = await reader.read()  # the server closes the connection after the answer
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    status = int(status_line.split()[1])
    return status, rest.partition(b"\r\n\r\n")[2][:300].decode(errors="replace")


async def _stream(plan, stream, start, results, gate):
    rate, requests = stream["rate"], stream["requests"]
    total = min(int(rate * plan["seconds"]), len(requests))
    result = results[stream["name"]] = {
        "offered_per_second": rate, "due": int(rate * plan["seconds"]), "sent": 0, "statuses": {}, "errors": {},
        "latencies": [], "send_lateness": [], "ran_out": total < int(rate * plan["seconds"]),
        "unexpected_samples": [], "timeline": {},
    }
    expect = set(stream.get("expect") or [200])
    tasks = []

    async def one(i, due_at):
        async with gate:
            lateness = time.time() - due_at
            try:
                status, head = await asyncio.wait_for(_send(plan["host"], plan["port"], requests[i]), TIMEOUT_S)
            except Exception as exc:  # refused, reset, timed out: an error, counted by kind
                name = type(exc).__name__
                result["errors"][name] = result["errors"].get(name, 0) + 1
                return
            done_at = time.time()
        result["latencies"].append(done_at - due_at)
        result["send_lateness"].append(lateness)
        result["statuses"][str(status)] = result["statuses"].get(str(status), 0) + 1
        second = str(int(due_at - start))
        result["timeline"][second] = result["timeline"].get(second, 0) + 1
        if status not in expect and len(result["unexpected_samples"]) < 5:
            result["unexpected_samples"].append({"status": status, "path": requests[i]["path"], "body": head})

    for i in range(total):
        due_at = start + i / rate
        delay = due_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result["sent"] += 1
        tasks.append(asyncio.create_task(one(i, due_at)))
    await asyncio.gather(*tasks)


async def _once(plan, action, start, results):
    await asyncio.sleep(max(0.0, start + action["at"] - time.time()))
    sent_at = time.time()
    try:
        status, head = await asyncio.wait_for(_send(plan["host"], plan["port"], action), TIMEOUT_S)
    except Exception as exc:
        status, head = None, repr(exc)
    results[action["name"]] = {"at_s": round(sent_at - start, 3), "status": status, "body": head,
                               "seconds": round(time.time() - sent_at, 3)}


async def _run(plan):
    start = plan["start_at"]
    results, once = {}, {}
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*[_stream(plan, s, start, results, gate) for s in plan["streams"]],
                         *[_once(plan, a, start, once) for a in plan.get("once", [])])
    return results, once


def main():
    plan = json.loads(open(sys.argv[1]).read())
    results, once = asyncio.run(_run(plan))
    json.dump({"streams": results, "once": once}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
