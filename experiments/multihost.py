"""Multi-host data parallelism on one machine: N processes, M CPU devices each, one `fit`.

The parent starts N worker processes on localhost. Each worker sets up JAX's multi-process
runtime the way every host of a cluster would (`jax.distributed.initialize` with the
coordinator's address, the number of processes and its own index; CPU collectives over gloo),
loads only its share of the rows of the book's spiral data (`jaxmlp.sharding.process_slice`),
builds the global data set from those shares (`jaxmlp.sharding.from_process_rows`) and calls
`jaxmlp.fit` on a mesh over all N·M devices: every batch is split over them and the gradients
are summed across processes. Each worker saves its final parameters; the parent then trains the
same net in one process on one device and checks that every worker ended with identical
parameters, equal to the single-process result up to float32 rounding.

    python experiments/multihost.py [--processes 2] [--devices 2] [--epochs 30] [--out DIR]

Exit status 0 when the parameters agree, 1 when they do not, 2 when a worker failed. On a real
cluster, drop the launcher: run the worker's body on every host with the cluster's coordinator
address (or none, on clusters JAX detects: Slurm, Open MPI, Kubernetes, Cloud TPU).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

RTOL, ATOL = 1e-4, 1e-6  # float32: the gradient sums run in another order across devices


def problem(epochs: int):
    """The run every process (and the single-process reference) performs."""
    import jax

    import jaxmlp as jm

    net = jm.MLP((2, 32, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=40)  # 120 examples
    params = jm.init_params(jax.random.key(1), net)
    kwargs = dict(
        loss="categorical_crossentropy",
        reg=jm.Regularization(l2w=5e-4, l2b=5e-4),
        epochs=epochs,
        batch_size=30,  # 4 batches per epoch, each split over every device
        key=jax.random.key(2),
        progress=False,
    )
    return net, params, jm.optim.adam(0.02), x, y, kwargs


def flat(params) -> dict[str, np.ndarray]:
    """Host copies of the parameters, named ``W0``, ``b0``, ``W1``, ..."""
    import jax

    out = {}
    for l, layer in enumerate(params):
        for name, a in layer.items():
            if isinstance(a, jax.Array) and not a.is_fully_addressable:
                a = a.addressable_data(0)  # replicated: every device holds the whole array
            out[f"{name}{l}"] = np.asarray(a)
    return out


def worker(rank: int, processes: int, port: int, epochs: int, out: str) -> None:
    import jax

    jax.config.update("jax_platforms", "cpu")
    # gloo is the default CPU collectives library of recent JAX; say so for older ones.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=processes,
        process_id=rank,
        initialization_timeout=120,
    )
    import jaxmlp as jm

    net, params, opt, x, y, kwargs = problem(epochs)
    rows = jm.sharding.process_slice(x.shape[0])  # this process loads only its rows
    mesh = jm.sharding.data_mesh()  # every device of every process
    x = jm.sharding.from_process_rows(np.asarray(x[rows]), mesh)
    y = jm.sharding.from_process_rows(np.asarray(y[rows]), mesh)
    start = time.perf_counter()
    result = jm.fit(net, params, opt, x, y, mesh=mesh, **kwargs)
    seconds = time.perf_counter() - start
    np.savez(
        os.path.join(out, f"process{rank}.npz"),
        loss=result.history["loss"],
        devices=np.array([len(jax.local_devices()), jax.device_count()]),
        rows=np.array([rows.start, rows.stop]),
        **flat(result.params),
    )
    print(
        f"process {rank}/{processes}: rows {rows.start}:{rows.stop}, {jax.local_device_count()} "
        f"local of {jax.device_count()} devices, final loss {result.history['loss'][-1]:.6f}, "
        f"{seconds:.1f} s",
        flush=True,
    )
    jax.distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, devices: int, epochs: int, out: str, timeout: float) -> int:
    """Start the workers, wait for them, train the reference, compare; the exit status."""
    port = free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(rank),
                "--processes",
                str(processes),
                "--port",
                str(port),
                "--epochs",
                str(epochs),
                "--out",
                out,
            ],
            env=env,
        )  # fmt: skip
        for rank in range(processes)
    ]
    deadline = time.monotonic() + timeout
    failed = False
    try:
        for p in procs:
            left = max(1.0, deadline - time.monotonic())
            failed |= p.wait(timeout=left) != 0
    except subprocess.TimeoutExpired:
        failed = True
        print(f"workers still running after {timeout:.0f} s; stopping them", file=sys.stderr)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if failed:
        print("a worker failed", file=sys.stderr)
        return 2

    import jaxmlp as jm

    net, params, opt, x, y, kwargs = problem(epochs)
    single = jm.fit(net, params, opt, x, y, **kwargs)
    reference = flat(single.params)
    np.savez(os.path.join(out, "reference.npz"), loss=single.history["loss"], **reference)
    results = [np.load(os.path.join(out, f"process{r}.npz")) for r in range(processes)]
    between = max(
        float(np.max(np.abs(r[k] - results[0][k]))) for r in results[1:] for k in reference
    ) if processes > 1 else 0.0  # fmt: skip
    to_single = max(float(np.max(np.abs(results[0][k] - reference[k]))) for k in reference)
    agree = between == 0 and all(
        np.allclose(results[0][k], reference[k], rtol=RTOL, atol=ATOL) for k in reference
    )
    print(
        f"{processes} processes x {devices} devices: parameters identical across processes "
        f"(max difference {between:.1e}); max difference to one process on one device "
        f"{to_single:.1e} -> {'agree' if agree else 'DISAGREE'}"
    )
    return 0 if agree else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=2, help="processes to start")
    parser.add_argument("--devices", type=int, default=2, help="CPU devices per process")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of training")
    parser.add_argument("--out", default=None, help="where the results go (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before giving up")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.processes, args.port, args.epochs, args.out)
        return
    out = args.out or tempfile.mkdtemp(prefix="jaxmlp-multihost-")
    os.makedirs(out, exist_ok=True)
    sys.exit(launch(args.processes, args.devices, args.epochs, out, args.timeout))


if __name__ == "__main__":
    main()
