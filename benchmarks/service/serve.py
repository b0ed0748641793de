"""Run the ensemble service for a benchmark: ``python -m benchmarks.service.serve --config FILE``.

The same wiring as ``python -m server`` (``load_settings`` -> ``build_components`` -> ``start_server``,
drain on SIGTERM), except that the components are built *inside* the running event loop. At the time of
writing, ``server.app.serve_forever`` builds them before ``asyncio.run`` starts its loop, so the Triton
backend's ``tritonclient.grpc.aio`` channel is bound to another loop and every call fails with "attached
to a different loop" (readiness never turns SERVING). Once that is fixed upstream, the benchmark stack
can launch ``python -m server`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


async def _serve(config: str) -> None:
    from server.app import build_components, start_server
    from server.settings import load_settings

    settings = load_settings(config)
    logging.basicConfig(level=settings.telemetry.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    components = build_components(settings)  # inside the loop: the aio Triton client binds to it
    running = await start_server(settings, components)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(running.drain(grace_s=2.0)))
    await running.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service.serve")
    parser.add_argument("--config", required=True, help="settings file (YAML/JSON), as for python -m server")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
