"""The ``aware-ray`` command line.

Bad input (an unknown app or policy, a broken trace file, a bad value) ends with one line on
stderr and exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from envs.errors import ConfigError, TraceError
from policies.recommended import RECOMMENDED

EXIT_BAD_INPUT = 2


def _scoreboard_args(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--time-compression`` and ``--memory-price``: how traces replay and what memory costs."""
    p.add_argument(
        "--time-compression",
        type=float,
        default=1.0,
        help=f"{what}seconds of trace replayed per simulated second (default 1: real time, as a cluster sees it)",
    )
    p.add_argument(
        "--memory-price",
        type=float,
        default=None,
        help=f"{what}cores per GiB: money = CPU core-hours + memory GiB-hours x this (default 1/9, from GKE "
        "Autopilot and AWS Fargate list prices)",
    )


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--policies",
        default="heuristic-frontier,vpa,hpa+vpa,oracle,static",
        help="comma-separated: heuristic-frontier (hpa, hpa+vpa-inplace and predictive at targets 0.2-0.9), "
        "hpa-frontier, hpa@X, hpa+vpa[@X], hpa+vpa-inplace@X, predictive@X, vpa, oracle, static, ddpg:PATH, "
        "ddpg:pretrained, safe:POLICY or safe@T:POLICY (POLICY behind the bootstrap fallback; T: its hpa+vpa target), "
        "stable@S:POLICY (POLICY behind a scale-down stabilization window of S seconds), "
        "steady@S:POLICY (the same window holding only asks made two intervals running), "
        "lean@U:POLICY (POLICY may grow a service only as the HPA at target U would, unless it is throttled, "
        "dropping or queueing; while the SLO is lost a CPU limit below one core may rise to one), "
        "vpa-mem:POLICY (POLICY's replicas and CPU limits, the VPA's memory limits), "
        "mem@H:POLICY (memory limits H x each service's peak use over the last 300 s), "
        "floor@T:POLICY (replicas never below what the HPA at target T would set), "
        "plan@U:POLICY (no service planned above utilisation U at the CPU in use)",
    )
    p.add_argument("--app", default="social-network", help="shipped app name or app YAML path")
    p.add_argument(
        "--trace",
        action="append",
        default=[],
        metavar="FILE",
        help="trace CSV (shipped name or path; FILE#column for one column); repeatable",
    )
    p.add_argument("--family", action="append", default=[], metavar="NAME", help="synthetic family; repeatable")
    p.add_argument(
        "--held-out",
        "--validation",
        dest="held_out",
        action="store_true",
        help="add every trace of the default held-out split (--validation is its old name)",
    )
    p.add_argument("--max-hours", type=float, default=6.0, help="longest simulated time per episode")
    p.add_argument("--seeds", type=int, default=3, help="seeds per workload")
    p.add_argument("--workers", type=int, default=0, help="parallel processes (0: one per core)")
    p.add_argument("--timeseries", default="first-seed", help="per-step rows for: first-seed, all, none")
    p.add_argument("--noise", type=float, default=None, help="measurement noise (default: the env's)")
    p.add_argument("--peak-rps", type=float, default=None, help="scale workloads to this peak")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _scoreboard_args(p)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aware_ray.evaluation.evaluate import EvalPlan, run, table
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE
    from envs.workload import default_split

    traces = list(args.trace)
    if args.held_out:
        traces += [s.split(":", 1)[1] for s in default_split()["held_out"]]
    env = {}
    if args.noise is not None:
        env["noise"] = args.noise
    if args.peak_rps is not None:
        env["peak_rps"] = args.peak_rps
    plan = EvalPlan(
        policies=[p for p in args.policies.split(",") if p.strip()],
        app=args.app,
        traces=traces,
        families=list(args.family),
        max_hours=args.max_hours,
        seeds=args.seeds,
        env=env,
        timeseries=args.timeseries,
        workers=args.workers,
        time_compression=args.time_compression,
        memory_price=DEFAULT_MEMORY_PRICE if args.memory_price is None else args.memory_price,
    )
    summary = run(plan, Path(args.out), progress=not args.quiet)
    print(table(summary))
    print(f"\nwrote {args.out}/summary.json, summary.csv, timeseries.csv, report.md and {len(summary['plots'])} plots")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from aware_ray.training.train import main_train

    return main_train(args.config, args.set, args.out, args.resume, args.experience)


def cmd_tune(args: argparse.Namespace) -> int:
    from aware_ray.training.sweep import main_tune

    return main_tune(args.config, args.set, args.out, args.resume)


def cmd_reselect(args: argparse.Namespace) -> int:
    from aware_ray.training.reselect import main_reselect

    return main_reselect(args.run)


def cmd_rank(args: argparse.Namespace) -> int:
    from aware_ray.training.rank import main_rank

    return main_rank(args.run, args.policies, args.out, args.time_compression, args.memory_price)


def cmd_validation_set(args: argparse.Namespace) -> int:
    from aware_ray.training.validation_set import main_validation_set

    return main_validation_set(args.config, args.set, args.out)


def cmd_bench(args: argparse.Namespace) -> int:
    from aware_ray.bench import runner as bench

    if args.name == "serve":
        from aware_ray.bench.serve import bench_serve

        print(json.dumps(bench_serve(args.seconds if args.seconds != 3.0 else 10.0)))
        return 0
    result = bench.run(args.name, args)
    print(json.dumps(result))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aware_ray.demo import run_demo

    return run_demo(Path(args.out), quick=args.quick, train=not args.no_train)


def cmd_serve(args: argparse.Namespace) -> int:
    from aware_ray.serving.launch import main_serve

    return main_serve(args)


def cmd_control(args: argparse.Namespace) -> int:
    from aware_ray.control.main import main_control

    return main_control(args)


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a policy over HTTP (and gRPC) as a Ray Serve application")
    p.add_argument("--config", default=None, help="a Serve config YAML (experiments/configs/serve.yaml)")
    p.add_argument("--policy", default=None, help=f"policy spec (default {RECOMMENDED})")
    p.add_argument("--apps", default=None, help="comma-separated app names served (default: all shipped)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP host")
    p.add_argument("--port", type=int, default=8000, help="HTTP port")
    p.add_argument("--grpc-port", type=int, default=0, help="gRPC port (0: no gRPC proxy)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    p.set_defaults(func=cmd_serve)


def _control_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("control", help="the live controller: metrics -> endpoint -> rules -> guard -> apply")
    p.add_argument("--config", default=None, help="controller YAML (experiments/configs/control.yaml)")
    p.add_argument(
        "--backend",
        choices=["sim", "kubernetes"],
        default=None,
        help="where metrics come from and decisions go (sim: the simulator; kubernetes: a cluster)",
    )
    p.add_argument("--app", default=None, help="one app to control (replaces the config's apps)")
    p.add_argument("--trace", default=None, help="sim: trace to replay")
    p.add_argument("--family", default=None, help="sim: synthetic family instead of a trace")
    p.add_argument("--seed", type=int, default=None, help="sim: seed (as evaluate's)")
    p.add_argument("--max-hours", type=float, default=None, help="sim: simulated hours (as evaluate's)")
    p.add_argument("--speed", default=None, help="sim: N times real time, or max")
    p.add_argument("--namespace", default=None, help="kubernetes: namespace of the app's Deployments")
    p.add_argument(
        "--allowed-namespaces", default=None, help="kubernetes: comma-separated namespaces it may act in (default: it)"
    )
    p.add_argument("--redis-url", default=None, help="kubernetes: the collector's metric store, redis://host:port/db")
    p.add_argument("--redis-password-file", default=None, help="kubernetes: file holding the Redis password (a Secret)")
    p.add_argument(
        "--dry-run", action="store_true", default=None, help="kubernetes: server-side dry run of every change, logged"
    )
    p.add_argument("--endpoint", default=None, help="policy endpoint URL")
    p.add_argument("--timeout-ms", type=float, default=None, help="endpoint timeout per interval (default 300)")
    p.add_argument("--policy", default=None, help="the spec the endpoint serves")
    p.add_argument("--mode", choices=["shadow", "canary", "active"], default=None)
    p.add_argument("--canary", default=None, help="canary mode: comma-separated apps where the policy acts")
    p.add_argument(
        "--fallback",
        default=None,
        help="the bootstrap fallback's heuristic (hpa+vpa@T or hpa@T; the config's other bootstrap keys, "
        "or their defaults, stay), or 'off' for none",
    )
    p.add_argument("--experience", default=None, help="redis://host:port/db for experience records")
    p.add_argument("--experience-file", default=None, help="JSONL file experience records are appended to")
    p.add_argument("--intervals", type=int, default=None, help="stop after this many intervals")
    p.add_argument("--out", default=None, help="report folder (default runs/control)")
    p.set_defaults(func=cmd_control)


def _set_arg(p: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE``, repeatable: a training config's key overridden on the command line."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. {example}; repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aware-ray", description="RL autoscaling for Kubernetes microservices, on Ray"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="compare policies on traces and synthetic workloads")
    _evaluate_args(ev)
    ev.set_defaults(func=cmd_evaluate)
    tr = sub.add_parser("train", help="train DDPG (with the meta-learner) on the simulator, through Ray Tune")
    tr.add_argument("--config", required=True, help="training config YAML (experiments/configs/NAME.yaml)")
    _set_arg(tr, "run.iterations=10 or ddpg.tau=0.01")
    tr.add_argument("--out", required=True, help="run folder (runs/NAME)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    tr.add_argument(
        "--experience", default=None, help="controller experience (redis://host:port/db or a JSONL export) to replay"
    )
    tr.set_defaults(func=cmd_train)
    tu = sub.add_parser("tune", help="a Tune sweep (ASHA) of training configs, judged on the validation score")
    tu.add_argument("--config", required=True, help="sweep YAML (experiments/configs/sweep.yaml)")
    _set_arg(tu, "run.iterations=8 (applied to the base config of every trial)")
    tu.add_argument("--out", required=True, help="sweep folder (runs/NAME)")
    tu.add_argument("--resume", action="store_true", help="continue the sweep in OUT")
    tu.set_defaults(func=cmd_tune)
    rs = sub.add_parser(
        "reselect", help="score a finished run's checkpoints again with the current scoreboard; export the best"
    )
    rs.add_argument("run", help="the training run folder (runs/NAME)")
    rs.set_defaults(func=cmd_reselect)
    rk = sub.add_parser(
        "rank", help="score policies on a run's validation workloads, best first (which to ship, from several runs)"
    )
    rk.add_argument(
        "run",
        help="the training run or validation set whose validation (workloads, seeds, baselines) scores them; "
        "RUN,RUN... ranks over several sets' workloads together",
    )
    rk.add_argument(
        "policies",
        nargs="+",
        help="ddpg:PATH, ddpg:pretrained, a policy or run folder, a run's checkpoint (RUN/checkpoints/iter_N); "
        "stable@S: or lean@U: before any of them",
    )
    rk.add_argument("--out", help="write the ranking as JSON here")
    _scoreboard_args(rk)
    rk.set_defaults(func=cmd_rank)
    vs = sub.add_parser(
        "validation-set",
        help="score the baselines on a config's validation (no training), for `rank` to score candidates on",
    )
    vs.add_argument("--config", required=True, help="training config YAML whose env and run.eval_* define it")
    _set_arg(vs, "run.eval_seeds=4 or run.eval_families=[spikes]")
    vs.add_argument("--out", required=True, help="new folder to write (runs/NAME)")
    vs.set_defaults(func=cmd_validation_set)
    be = sub.add_parser("bench", help="benchmarks; each prints one JSON line")
    be.add_argument(
        "name",
        choices=[
            "sim",
            "learner",
            "sampling",
            "ddpg-pendulum",
            "ddpg-quality",
            "bootstrap",
            "separability",
            "serve",
            "adapt",
        ],
        help="sim: env, vector env and simulator throughput; learner: DDPG updates/s and where an update's "
        "time goes; sampling: env runner scale-out and train's end-to-end rates; "
        "ddpg-pendulum: DDPG on Pendulum-v1; ddpg-quality: a policy "
        "against the baselines on held-out workloads; bootstrap: heuristic vs RL from scratch vs "
        "bootstrapped RL over one lifecycle; separability: how well the load itself separates the "
        "workload families (linear probe and MLP, short window and long context); serve: the policy "
        "endpoint's latency and throughput and the controller's overhead; adapt: env steps to 90 %% of a specialist on "
        "held-out workloads, meta policy vs transfer learning vs scratch, and the zero-shot score",
    )
    be.add_argument("--seconds", type=float, default=3.0, help="sim, sampling: measurement time per figure")
    be.add_argument("--batch", type=int, default=256, help="sim: envs in the batched simulator figure")
    be.add_argument("--env-steps", type=int, default=20_000, help="ddpg-pendulum: env steps to train")
    be.add_argument(
        "--training-intensity",
        type=float,
        default=64.0,
        help="ddpg-pendulum: replayed samples per env step (256 = one 256-batch update per step)",
    )
    be.add_argument("--seed", type=int, default=0, help="ddpg-pendulum: training seed")
    be.add_argument(
        "--replay-buffer",
        default="FlatReplayBuffer",
        choices=["FlatReplayBuffer", "EpisodeReplayBuffer"],
        help="ddpg-pendulum: replay path (EpisodeReplayBuffer: RLlib's, as before the flat buffer)",
    )
    be.add_argument(
        "--config-train",
        default="experiments/configs/default.yaml",
        help="learner, sampling: the training config whose model and training intensity are measured",
    )
    be.add_argument("--updates", type=int, default=20, help="learner: updates per timed window")
    be.add_argument("--gpu", action="store_true", help="learner: the learner on a CUDA GPU")
    be.add_argument(
        "--e2e-iterations", type=int, default=2, help="sampling: training iterations of the end-to-end figure"
    )
    be.add_argument("--policy", default="ddpg:pretrained", help="ddpg-quality: the policy to judge")
    be.add_argument("--seeds", type=int, default=3, help="ddpg-quality: seeds per workload")
    be.add_argument("--max-hours", type=float, default=4.0, help="ddpg-quality: simulated hours per episode")
    be.add_argument("--workers", type=int, default=0, help="ddpg-quality: parallel processes (0: one per core)")
    _scoreboard_args(be, "ddpg-quality: ")
    be.add_argument(
        "--out",
        default=None,
        help="ddpg-quality, bootstrap, adapt: output folder (reports/quality, reports/bootstrap, reports/adapt)",
    )
    be.add_argument(
        "--config",
        default=None,
        help="bootstrap: training config with a bootstrap section (experiments/configs/bootstrap.yaml); "
        "adapt: config with an adapt section (experiments/configs/adapt.yaml)",
    )
    be.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="bootstrap, adapt: config override")
    be.add_argument("--episodes", type=int, default=64, help="bootstrap: episodes per arm")
    be.add_argument("--switch-at", type=int, default=40, help="bootstrap: first episode that sees the new workload")
    be.add_argument(
        "--new-workload",
        action="append",
        default=None,
        help="bootstrap: workload spec(s) switched to midway (default family:flash-crowd)",
    )
    be.add_argument(
        "--arms",
        default=None,
        help="bootstrap: comma-separated subset of heuristic,rl_scratch,rl_bootstrap; "
        "adapt: of meta_finetune,flat_finetune,scratch",
    )
    be.add_argument(
        "--merge",
        default=None,
        metavar="DIR,DIR",
        help="adapt: join finished output folders of one protocol run in parts (by seed or workload) into --out",
    )
    be.add_argument("--probe-steps", type=int, default=160, help="separability: intervals per episode")
    be.add_argument("--train-seeds", type=int, default=20, help="separability: training episodes per family")
    be.add_argument("--test-seeds", type=int, default=6, help="separability: held-out episodes per family")
    be.add_argument("--first-n", type=int, default=16, help="bootstrap: episodes in the 'first N' figures")
    be.add_argument("--last-k", type=int, default=8, help="bootstrap: episodes in the 'at the end' figures")
    be.set_defaults(func=cmd_bench)
    de = sub.add_parser(
        "demo", help="train for a few minutes, then score the shipped deployment beside it and the baselines"
    )
    de.add_argument("--out", default="reports/demo", help="output folder")
    de.add_argument("--quick", action="store_true", help="a smaller run (for smoke tests)")
    de.add_argument("--no-train", action="store_true", help="skip training: the shipped policy and the baselines only")
    de.set_defaults(func=cmd_demo)
    _serve_parser(sub)
    _control_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, TraceError) as exc:
        print(f"aware-ray {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
