"""The ``s4`` command: ``serve`` (the gateway) and the offline tools on stored bodies."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from s4.codec import CodecError, FrameIndex


def _cmd_inspect(args: argparse.Namespace) -> int:
    from s4.tools.inspect import format_report, inspect_body
    from s4.tools.stored import load_manifest, registry_for

    manifest = load_manifest(args.meta)
    report = inspect_body(args.file, manifest, registry_for(manifest, args.dict))
    print(format_report(report))
    if not report.ok:
        return 1
    return 3 if report.unavailable else 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from s4.tools.decode import decoded_pieces, write_decoded
    from s4.tools.stored import load_manifest, registry_for

    manifest = load_manifest(args.meta)
    registry = registry_for(manifest, args.dict)
    written = write_decoded(decoded_pieces(args.file, manifest, registry), args.output)
    if args.output is not None:
        print(f"{args.output}: {written} bytes", file=sys.stderr)
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from s4.tools.index_dump import format_index

    print(format_index(FrameIndex.decode(args.file.read_bytes())))
    return 0


def _cmd_codecs(args: argparse.Namespace) -> int:
    from s4.codec.gpu.setup import GpuSettings, codec_report
    from s4.config import ConfigError, load_config

    try:
        config = load_config(args.config, overrides={"gpu_mode": args.gpu})
    except ConfigError as exc:
        print(f"s4 codecs: {exc}", file=sys.stderr)
        return 2
    statuses, gpu_line = codec_report(GpuSettings.from_mapping(config.gpu.model_dump()))
    print(gpu_line, file=sys.stderr)
    for status in statuses:
        where = f"available ({status.device})" if status.available else f"unavailable: {status.reason}"
        print(f"{int(status.kind):>2} {status.kind.wire_name:<16} {where}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from s4.codec.gpu.doctor import diagnose, format_report
    from s4.codec.gpu.setup import GpuSettings
    from s4.config import ConfigError, load_config

    try:
        config = load_config(args.config, overrides={"gpu_mode": args.gpu})
    except ConfigError as exc:
        print(f"s4 doctor: {exc}", file=sys.stderr)
        return 2
    settings = GpuSettings.from_mapping(config.gpu.model_dump())
    if args.device is not None:
        settings = GpuSettings.from_mapping({**config.gpu.model_dump(), "device": args.device})
    report = diagnose(settings, round_trips=not args.no_round_trip)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    if args.require_gpu and not report.round_trips:
        return 4
    return 0


def _cmd_bench_gpu(args: argparse.Namespace) -> int:
    from s4.bench import gpu as bench
    from s4.bench.corpus import files_corpus
    from s4.codec.gpu.nvcomp import probe
    from s4.codec.gpu.setup import GpuSettings

    found = probe(args.device)
    if not found.available:
        print(f"s4 bench gpu: no GPU here, nothing was measured: {found.reason}", file=sys.stderr)
        return 3
    from s4.codec.gpu.nvcomp import NvcompBackend

    limit = args.max_mib * 1024 * 1024
    samples = files_corpus(args.files, limit) if args.files else bench.default_samples(limit)
    for s in samples:
        print(f"# {s.name}: {len(s.data)} bytes from {s.source}", file=sys.stderr)
    settings = GpuSettings(
        mode="on", device=args.device, streams=args.streams, batch_bytes=args.batch_mib * 1024 * 1024
    )
    report = bench.run(
        samples,
        settings=settings,
        timer=NvcompBackend(args.device, warm_up=False),
        concurrency=tuple(args.concurrency),
        frame_size=args.frame_mib * 1024 * 1024,
        rounds=args.rounds,
        frame_sweep=[k * 1024 for k in args.frame_sweep_kib],
        sweep_kinds=[bench.CodecKind.from_name(n) for n in args.sweep_codecs],
        sweep_concurrency=args.sweep_concurrency,
    )
    print(bench.to_json(report) if args.json else bench.format_report(report))
    return 0


def _cmd_bench_codecs(args: argparse.Namespace) -> int:
    from s4.bench import codecs as bench
    from s4.bench.corpus import default_corpus, files_corpus

    limit = args.max_mib * 1024 * 1024
    samples = files_corpus(args.files, limit) if args.files else default_corpus(limit)
    threads = args.threads or os.cpu_count() or 1
    for s in samples:
        print(f"# {s.name}: {len(s.data)} bytes from {s.source}", file=sys.stderr)
    rows = bench.run(samples, frame_size=args.frame_mib * 1024 * 1024, rounds=args.rounds, threads=threads)
    print(bench.to_json(rows) if args.json else bench.format_rows(rows, threads))
    return 0


def _tool_codecs(args: argparse.Namespace):
    """The codec pool, dispatcher and frame policy ``s4 serve`` would build from the same settings
    (``--config``, ``S4_*`` variables, the flags), with every core for the codecs."""
    from s4.config import ConfigError, load_config
    from s4.gateway import build_codecs
    from s4.tools.stored import ToolError

    overrides = {
        "codec": getattr(args, "codec", None),
        "zstd_level": getattr(args, "zstd_level", None),
        "dispatcher": getattr(args, "dispatcher", None),
        "gpu_mode": getattr(args, "gpu", None),
        "workers": 1,
    }
    try:
        config = load_config(args.config, overrides=overrides)
        pool, dispatcher, policy = build_codecs(config)
    except ConfigError as exc:
        raise ToolError(str(exc), 2) from None
    return config, pool, dispatcher, policy


def _cmd_estimate(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from s4.tools import estimate
    from s4.tools.location import open_bucket_store, parse_bucket_url, upstream_config
    from s4.tools.stored import ToolError

    urls = [parse_bucket_url(t) for t in args.targets]
    if any(urls) and len(urls) > 1:
        raise ToolError("estimate one bucket (s3://bucket[/prefix]) or local paths, not both", 2)
    config, pool, dispatcher, policy = _tool_codecs(args)
    options = {
        "budget": int(args.budget_mib * 1024 * 1024),
        "price": args.price,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "progress": False if args.json else None,
        "zstd_level": config.zstd_level,
    }

    async def run() -> estimate.Estimate:
        if urls[0] is None:
            found = estimate.local_candidates(Path(t) for t in args.targets)
            return await estimate.run_estimate(
                found, pool, dispatcher, policy, source=" ".join(args.targets), **options
            )
        store = await open_bucket_store(upstream_config(args.endpoint_url, args.region, args.concurrency))
        try:
            found = await estimate.bucket_candidates(store, urls[0])
            return await estimate.run_estimate(found, pool, dispatcher, policy, source=str(urls[0]), **options)
        finally:
            await store.close()

    try:
        result = asyncio.run(run())
    finally:
        pool.close()
    print(json.dumps(result.to_dict(), indent=2) if args.json else estimate.format_estimate(result))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from s4.tools.location import open_bucket_store, parse_bucket_url, upstream_config
    from s4.tools.stored import ToolError
    from s4.tools.verify import Verifier, format_report

    url = parse_bucket_url(args.bucket)
    if url is None:
        raise ToolError(f"{args.bucket}: give the bucket as s3://bucket[/prefix]", 2)
    _, pool, _, _ = _tool_codecs(args)
    repair = args.repair or args.command == "repair"

    async def run():
        store = await open_bucket_store(upstream_config(args.endpoint_url, args.region, args.concurrency))
        try:
            verifier = Verifier(store, pool, repair=repair, concurrency=args.concurrency)
            return await verifier.run(url, args.min_age, progress=False if args.json else None)
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    finally:
        pool.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def _cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from s4.tools.location import open_bucket_store, parse_bucket_url, upstream_config
    from s4.tools.migrate import Checkpoint, Migrator, format_report
    from s4.tools.stored import ToolError

    url = parse_bucket_url(args.bucket)
    if url is None:
        raise ToolError(f"{args.bucket}: give the bucket as s3://bucket[/prefix]", 2)
    recompress = args.command == "recompress"
    path = args.checkpoint or Path(f"s4-{args.command}-{url.bucket}.checkpoint.json")
    checkpoint = Checkpoint(None if args.no_checkpoint else path, url, args.command)
    _, pool, dispatcher, policy = _tool_codecs(args)

    async def run():
        store = await open_bucket_store(upstream_config(args.endpoint_url, args.region, args.concurrency))
        try:
            migrator = Migrator(store, pool, dispatcher, policy, recompress=recompress, concurrency=args.concurrency)
            return await migrator.run(url, checkpoint, args.limit, progress=False if args.json else None)
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    except ValueError as exc:  # a checkpoint of another run
        raise ToolError(str(exc), 2) from None
    finally:
        pool.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 1 if report.failed else 0


def _cmd_train_dict(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from s4.tools import dictionary as dicts
    from s4.tools.location import open_bucket_store, parse_bucket_url, upstream_config
    from s4.tools.migrate import Checkpoint, Migrator
    from s4.tools.migrate import format_report as format_migrate
    from s4.tools.stored import ToolError

    url = parse_bucket_url(args.bucket)
    if url is None:
        raise ToolError(f"{args.bucket}: give the bucket as s3://bucket[/prefix]", 2)
    config, pool, dispatcher, policy = _tool_codecs(args)
    out: dict = {}

    async def run() -> None:
        store = await open_bucket_store(upstream_config(args.endpoint_url, args.region, args.concurrency))
        try:
            if args.use:
                dictionary = await dicts.load_dictionary(store, url.bucket, args.use)
            else:
                report, dictionary = await dicts.train_dict(
                    store,
                    pool,
                    dispatcher,
                    policy,
                    url,
                    min_size=args.min_size,
                    max_size=args.max_size,
                    samples=args.samples,
                    dict_size=args.dict_size,
                    level=config.zstd_level,
                    seed=args.seed,
                    store_it=not args.dry_run,
                )
                out["train"] = report
            if args.apply or args.use:
                if args.dry_run:
                    raise ToolError("--apply writes; it cannot go with --dry-run", 2)
                checkpoint = Checkpoint(
                    args.checkpoint or Path(f"s4-apply-dict-{url.bucket}.checkpoint.json"), url, "apply-dict"
                )
                migrator = Migrator(
                    store,
                    pool,
                    dispatcher,
                    policy,
                    concurrency=args.concurrency,
                    dictionary=dictionary,
                    max_size=args.max_size,
                )
                out["apply"] = await migrator.run(url, checkpoint, progress=False if args.json else None)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    finally:
        pool.close()
    if args.json:
        print(json.dumps({name: value.to_dict() for name, value in out.items()}, indent=2))
    else:
        if "train" in out:
            print(dicts.format_train_report(out["train"]))
        if "apply" in out:
            print(format_migrate(out["apply"]))
    return 1 if "apply" in out and out["apply"].failed else 0


def _cmd_savings(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from s4.tools import savings
    from s4.tools.location import open_bucket_store, upstream_config
    from s4.tools.stored import ToolError

    async def run() -> dict:
        if args.data_dir is not None:
            from s4.store.filesystem import FilesystemStore

            if not args.data_dir.is_dir():
                raise ToolError(f"{args.data_dir}: no such data directory", 2)
            store = await FilesystemStore.open(args.data_dir)
        else:
            store = await open_bucket_store(upstream_config(args.endpoint_url, args.region))
        try:
            buckets = [b.removeprefix("s3://").rstrip("/") for b in args.buckets]
            return await savings.gather(store, buckets, recount=args.recount)
        finally:
            await store.close()

    ledgers = asyncio.run(run())
    if args.chart is not None:
        savings.write_chart(ledgers, args.chart)
    print(json.dumps(savings.to_dict(ledgers), indent=2) if args.json else savings.format_table(ledgers))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from s4.config import ConfigError, load_config
    from s4.gateway import run

    overrides = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "domain": args.domain,
        "region": args.region,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "log_level": args.log_level,
        "codec": args.codec,
        "zstd_level": args.zstd_level,
        "dispatcher": args.dispatcher,
        "log_format": args.log_format,
        "access_log": args.access_log,
        "metrics_port": args.metrics_port,
        "workers": args.workers,
        "backend": args.backend,
        "upstream_endpoint": args.upstream_endpoint,
        "upstream_region": args.upstream_region,
        "limits_idle_timeout": args.idle_timeout,
        "limits_max_concurrent_requests": args.max_concurrent_requests,
        "gpu_mode": args.gpu,
    }
    try:
        config = load_config(args.config, overrides=overrides)
        return run(config, reload=lambda: load_config(args.config, overrides=overrides))
    except ConfigError as exc:
        print(f"s4 serve: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s4", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the S3 gateway (flags override S4_* variables and --config)")
    serve.add_argument("--config", type=Path, help="YAML file of settings")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8014; 0 picks a free one)")
    serve.add_argument("--data-dir", type=Path, help="embedded store directory (default ./s4-data)")
    serve.add_argument("--domain", help="enable virtual-hosted-style requests for BUCKET.DOMAIN")
    serve.add_argument("--region", help="region reported to clients (default us-east-1)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--log-format", choices=["text", "json"], help="application log format (default text)")
    serve.add_argument("--access-log", help='access log target: "-" (stdout, default) or a file path')
    serve.add_argument("--metrics-port", type=int, help="also serve /metrics, /health, /ready on this port")
    serve.add_argument("--workers", type=int, help="gateway processes on the port (default: one per core)")
    serve.add_argument("--codec", help="codec for compressible objects (default cpu-zstd; see `s4 codecs`)")
    serve.add_argument(
        "--gpu", choices=["auto", "on", "off"], help="use a GPU: auto (when nvCOMP finds one; default), on, off"
    )
    serve.add_argument("--zstd-level", type=int, help="zstd level (default 3)")
    serve.add_argument(
        "--dispatcher", choices=["sampling", "always"], help="sampling: skip already-compressed data (default)"
    )
    serve.add_argument(
        "--backend",
        choices=["filesystem", "s3"],
        help="where objects live: filesystem (embedded, in --data-dir; default) or s3 (an upstream S3 endpoint)",
    )
    serve.add_argument(
        "--upstream-endpoint",
        help="upstream S3 URL for --backend s3; keys from S4_UPSTREAM_ACCESS_KEY_ID and"
        " S4_UPSTREAM_SECRET_ACCESS_KEY, or else the standard AWS credential chain",
    )
    serve.add_argument("--upstream-region", help="region of the upstream S3 (default us-east-1)")
    serve.add_argument(
        "--idle-timeout",
        type=float,
        help="seconds a request body or response may make no progress before it fails (default 60)",
    )
    serve.add_argument(
        "--max-concurrent-requests", type=int, help="S3 requests served at once; beyond: 503 SlowDown (default 1024)"
    )
    serve.set_defaults(func=_cmd_serve)

    def stored_body(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", type=Path, help="the stored body, as it lies in the backend")
        p.add_argument("--meta", type=Path, help="flat JSON of its metadata (x-amz-meta- prefix optional)")
        p.add_argument("--dict", type=Path, help="the zstd dictionary for cpu-zstd-dict objects")

    inspect = sub.add_parser("inspect", help="frames, codecs, sizes, ratio and CRC check of a stored body")
    stored_body(inspect)
    inspect.set_defaults(func=_cmd_inspect)

    decode = sub.add_parser("decode", help="the original bytes of a stored body")
    stored_body(decode)
    decode.add_argument("-o", "--output", type=Path, help="write here (atomically) instead of stdout")
    decode.set_defaults(func=_cmd_decode)

    index = sub.add_parser("index", help="header and entries of a .s4index sidecar")
    index.add_argument("file", type=Path)
    index.set_defaults(func=_cmd_index)

    codecs = sub.add_parser("codecs", help="every codec, available here or not and why")
    codecs.add_argument("--config", type=Path, help="YAML file of settings (its gpu section is used)")
    codecs.add_argument("--gpu", choices=["auto", "on", "off"], help="as `s4 serve --gpu` (default auto)")
    codecs.set_defaults(func=_cmd_codecs)

    doctor = sub.add_parser(
        "doctor",
        help="does each codec run here, or why not (driver, device, CuPy, nvCOMP, NVRTC); GPU round trips",
        description="Exit 0 when it could tell (GPU or not); 4 with --require-gpu when an nvCOMP codec does not run.",
    )
    doctor.add_argument("--config", type=Path, help="YAML file of settings (its gpu section is used)")
    doctor.add_argument("--gpu", choices=["auto", "on", "off"], help="as `s4 serve --gpu` (default auto)")
    doctor.add_argument("--device", type=int, help="CUDA device (default: the configuration's, 0)")
    doctor.add_argument("--no-round-trip", action="store_true", help="look only; run nothing on the GPU")
    doctor.add_argument("--require-gpu", action="store_true", help="exit 4 unless every nvCOMP codec round-trips")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)

    bench = sub.add_parser("bench", help="benchmarks (figures, not tests)")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    bc = bench_sub.add_parser("codecs", help="codec MB/s and ratio, beside raw zstandard")
    bc.add_argument("files", nargs="*", type=Path, help="corpus files (default: stdlib text, binaries, a wheel)")
    bc.add_argument("--max-mib", type=int, default=16, help="bytes taken from each sample (MiB)")
    bc.add_argument("--frame-mib", type=int, default=4, help="frame size (MiB)")
    bc.add_argument("--rounds", type=int, default=5, help="best of this many timed rounds")
    bc.add_argument("--threads", type=int, default=0, help="threads for the all-cores runs (default: cores)")
    bc.add_argument("--json", action="store_true", help="machine-readable output")
    bc.set_defaults(func=_cmd_bench_codecs)
    bg = bench_sub.add_parser("gpu", help="GPU codec GB/s through the pool, beside kernels alone, PCIe and cpu-zstd")
    bg.add_argument("files", nargs="*", type=Path, help="corpus files (default: text, binaries, an int64 column)")
    bg.add_argument("--max-mib", type=int, default=64, help="bytes taken from each sample (MiB)")
    bg.add_argument("--frame-mib", type=int, default=4, help="frame size (MiB)")
    bg.add_argument("--batch-mib", type=int, default=64, help="GPU batch bound (MiB)")
    bg.add_argument("--streams", type=int, default=2, help="CUDA streams (worker threads)")
    bg.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32, 64], help="concurrent requests")
    bg.add_argument(
        "--frame-sweep-kib",
        type=int,
        nargs="*",
        default=[64, 256, 1024, 4096, 16384, 65536],
        help="frame sizes of the sweep (KiB; none: no sweep)",
    )
    bg.add_argument("--sweep-codecs", nargs="+", default=["nvcomp-zstd"], help="codecs of the frame-size sweep")
    bg.add_argument("--sweep-concurrency", type=int, default=32, help="concurrent requests of the sweep")
    bg.add_argument("--device", type=int, default=0, help="CUDA device")
    bg.add_argument("--rounds", type=int, default=3, help="best of this many timed rounds")
    bg.add_argument("--json", action="store_true", help="machine-readable output")
    bg.set_defaults(func=_cmd_bench_gpu)
    _add_tool_parsers(sub)
    return parser


def _s3_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", help="S3 endpoint of s3:// targets (default: AWS's, of --region)")
    p.add_argument("--region", help="region of the S3 endpoint (default $AWS_REGION, else us-east-1)")


def _codec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="the gateway's YAML settings (codec, level, frames, dispatcher)")
    p.add_argument("--codec", help="as `s4 serve --codec` (default: the settings', cpu-zstd)")
    p.add_argument("--zstd-level", type=int, help="as `s4 serve --zstd-level`")
    p.add_argument("--dispatcher", choices=["sampling", "always"], help="as `s4 serve --dispatcher`")
    p.add_argument("--gpu", choices=["auto", "on", "off"], help="as `s4 serve --gpu`")


def _add_tool_parsers(sub) -> None:
    """The operator tools over trees and buckets (s4/tools/)."""
    from s4.tools.estimate import DEFAULT_BUDGET, S3_STANDARD_PRICE

    est = sub.add_parser("estimate", help="what a tree or a bucket would take once stored by the gateway")
    est.add_argument("targets", nargs="+", help="local files and folders, or one s3://bucket[/prefix]")
    _s3_options(est)
    _codec_options(est)
    est.add_argument(
        "--budget-mib", type=float, default=DEFAULT_BUDGET // (1024 * 1024), help="bytes read at most (MiB)"
    )
    est.add_argument(
        "--price",
        type=float,
        default=S3_STANDARD_PRICE,
        help=f"USD per GB-month (default {S3_STANDARD_PRICE}: S3 Standard, us-east-1, first 50 TB)",
    )
    est.add_argument("--concurrency", type=int, default=8, help="objects read and encoded at once")
    est.add_argument("--seed", type=int, default=0, help="seed of the sample's random order")
    est.add_argument("--json", action="store_true", help="one JSON object")
    est.set_defaults(func=_cmd_estimate)

    for name, help_text in (
        ("verify", "check every stored object's frames, CRCs and sidecar of a bucket, on the upstream"),
        ("repair", "s4 verify --repair: rebuild sidecars, remove orphan ones and stale staging"),
    ):
        ver = sub.add_parser(name, help=help_text)
        ver.add_argument("bucket", help="s3://bucket[/prefix] on the upstream the gateway stores into")
        _s3_options(ver)
        _codec_options(ver)
        ver.add_argument("--repair", action="store_true", help="rebuild and remove (never rewrites data)")
        ver.add_argument(
            "--min-age", type=float, default=3600, help="staging younger than this (seconds) is left (default 3600)"
        )
        ver.add_argument("--concurrency", type=int, default=8, help="objects checked at once")
        ver.add_argument("--json", action="store_true", help="one JSON object")
        ver.set_defaults(func=_cmd_verify)

    for name, help_text in (
        ("migrate", "rewrite a bucket's plain objects into the S4 format in place (resumable, conditional)"),
        ("recompress", "rewrite a bucket's S4 objects with another codec or level (resumable, conditional)"),
    ):
        mig = sub.add_parser(name, help=help_text)
        mig.add_argument("bucket", help="s3://bucket[/prefix] on the upstream the gateway stores into")
        _s3_options(mig)
        _codec_options(mig)
        mig.add_argument("--checkpoint", type=Path, help=f"progress file (default ./s4-{name}-BUCKET.checkpoint.json)")
        mig.add_argument("--no-checkpoint", action="store_true", help="keep no progress file")
        mig.add_argument("--limit", type=int, help="stop after this many objects (run again to go on)")
        mig.add_argument("--concurrency", type=int, default=8, help="objects rewritten at once")
        mig.add_argument("--json", action="store_true", help="one JSON object")
        mig.set_defaults(func=_cmd_migrate)

    sav = sub.add_parser("savings", help="the savings ledger per bucket: original and stored bytes, objects")
    sav.add_argument("buckets", nargs="*", help="buckets (default: all), as NAME or s3://NAME")
    _s3_options(sav)
    sav.add_argument("--data-dir", type=Path, help="read the embedded store of `s4 serve` in this directory instead")
    sav.add_argument("--json", action="store_true", help="one JSON object")
    sav.add_argument("--chart", type=Path, metavar="FILE.png", help="also draw a bar chart per bucket")
    sav.add_argument(
        "--recount",
        action="store_true",
        help="count afresh from what the store holds (objects written around the gateway) and keep that",
    )
    sav.set_defaults(func=_cmd_savings)

    td = sub.add_parser("train-dict", help="train a zstd dictionary on a bucket's small objects, store it in .s4dict/")
    td.add_argument("bucket", help="s3://bucket[/prefix] on the upstream the gateway stores into")
    _s3_options(td)
    _codec_options(td)
    td.add_argument(
        "--min-size", type=int, default=256, help="smallest object sampled (bytes as listed upstream: stored size)"
    )
    td.add_argument(
        "--max-size", type=int, default=16 * 1024, help="largest object sampled and rewritten (stored bytes)"
    )
    td.add_argument("--samples", type=int, default=2000, help="objects sampled (a fifth held out to measure)")
    td.add_argument("--dict-size", type=int, default=16 * 1024, help="dictionary size (bytes)")
    td.add_argument("--seed", type=int, default=0, help="seed of the sample")
    td.add_argument("--dry-run", action="store_true", help="train and measure, store nothing")
    td.add_argument("--apply", action="store_true", help="then rewrite the small objects as cpu-zstd-dict")
    td.add_argument("--use", metavar="DICT_ID", help="no training: apply the stored dictionary .s4dict/DICT_ID")
    td.add_argument("--checkpoint", type=Path, help="progress file of --apply")
    td.add_argument("--concurrency", type=int, default=8, help="objects read or rewritten at once")
    td.add_argument("--json", action="store_true", help="one JSON object")
    td.set_defaults(func=_cmd_train_dict)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from s4.tools.stored import ToolError, exit_status

    try:
        return args.func(args)
    except ToolError as exc:
        print(f"s4 {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except CodecError as exc:
        print(f"s4 {args.command}: {exc}", file=sys.stderr)
        return exit_status(exc)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"s4 {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
