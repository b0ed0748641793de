"""The one command that runs the service (the container's ENTRYPOINT, ``scripts/run.sh``, the process tests):

    python -m server [--config FILE] [--port N] [--metrics-port N] [--triton-url HOST:PORT]
                     [--launch-triton | --fake-backend] [--print-config]

One set of defaults: the settings (``--config`` / ``$MANGAASSIST_CONFIG`` / ``MANGAASSIST_*``, server/settings.py),
the flags overriding them. It calls the Triton at ``triton.url``; ``--launch-triton`` starts tritonserver on the
built repository instead (what ``scripts/run.sh`` does), ``--fake-backend`` runs without Triton. The client CLI
(``mangaassist``, clients/cli.py) only calls a running service.
"""

from __future__ import annotations

import argparse
import json
import sys

from server.settings import load_settings, to_dict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="MangaAssist gRPC ensemble service")
    parser.add_argument("--config", help="YAML settings file (default: $MANGAASSIST_CONFIG)")
    parser.add_argument("--port", type=int, help="gRPC port (overrides server.port)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (overrides server.metrics_port; -1 disables)")
    parser.add_argument("--triton-url", help="Triton gRPC address (overrides triton.url)")
    parser.add_argument("--fake-backend", action="store_true", help="deterministic in-process models (no Triton)")
    parser.add_argument("--launch-triton", action="store_true", help="start tritonserver on the built repository")
    parser.add_argument("--print-config", action="store_true", help="print the effective settings as JSON and exit")
    args = parser.parse_args(argv)

    settings = load_settings(args.config)
    server_overrides = {k: v for k, v in (("port", args.port), ("metrics_port", args.metrics_port)) if v is not None}
    if server_overrides:
        settings = settings.replace(server=server_overrides)
    if args.triton_url:
        settings = settings.replace(triton={"url": args.triton_url})
    if args.print_config:
        json.dump(to_dict(settings), sys.stdout, indent=2)
        print()
        return 0

    from server.app import serve_forever

    serve_forever(settings, launch_triton=args.launch_triton, fake_backend=args.fake_backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
