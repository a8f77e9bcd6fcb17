#!/usr/bin/python3
"""The proto is the public API: a Python client generated from proto/ with Debian's grpc tools
submits a sweep, watches it to the end, reads its results and exports its curves, against a real
coordinator and CPU worker on loopback (docs/python.md shows the same steps for a notebook).

Run by ctest (label integration) with COORDINATOR_BINARY, WORKER_BINARY and SOURCE_DIR set.
Exits 77 (a skip) when Debian's python3-grpcio or python3-grpc-tools is missing, and 1 in CI
(the environment variable CI set): scripts/setup.sh installs them (tests/required_tool.h)."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:
    in_ci = os.environ.get("CI", "") not in ("", "0", "false")
    print(("CI: a tool scripts/setup.sh installs is missing: " if in_ci else "skipped: ") +
          f"{e} (install python3-grpcio and python3-grpc-tools)")
    sys.exit(1 if in_ci else 77)

SOURCE_DIR = os.environ["SOURCE_DIR"]
WORK = tempfile.mkdtemp(prefix="python_client_")


def generate_client():
    out = os.path.join(WORK, "client")
    os.makedirs(out)
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    code = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                        os.path.join(proto_dir, "orchestrator.proto")])
    assert code == 0, "protoc failed"
    sys.path.insert(0, out)


class PythonClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        generate_client()
        ports = os.path.join(WORK, "ports.json")
        cls.coordinator = subprocess.Popen(
            [os.environ["COORDINATOR_BINARY"], "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
             "--db", os.path.join(WORK, "sweeps.db"), "--checkpoint-root", os.path.join(WORK, "ckpt"),
             "--ports-file", ports], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not os.path.exists(ports):
            assert time.time() < deadline, "the coordinator did not start"
            time.sleep(0.1)
        time.sleep(0.1)
        cls.grpc_address = "127.0.0.1:%d" % json.load(open(ports))["grpc"]
        cls.worker = subprocess.Popen(
            [os.environ["WORKER_BINARY"], "--coordinator", cls.grpc_address, "--worker-id", "py-w1",
             "--slots", "2", "--threads-per-job", "1", "--work-dir", os.path.join(WORK, "w1")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.worker, cls.coordinator):
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(WORK, ignore_errors=True)

    def test_submit_watch_results_export(self):
        import orchestrator_pb2 as pb
        import orchestrator_pb2_grpc as rpc
        stub = rpc.SweepServiceStub(grpc.insecure_channel(self.grpc_address))
        spec = f"""name: from-python
base:
  model: {{preset: micro}}
  training: {{max_steps: 30, batch_tokens: 256, micro_batch: 8, eval_every: 10, eval_tokens: 2048}}
  data: {{corpus: gcide, max_corpus_bytes: 1000000, cache_dir: {os.path.join(WORK, 'cache')}}}
grid:
  optimizer: [{{name: adamw, lr: 3.0e-3}}, {{name: muon, lr: 1.0e-2}}]
targets: [5.0]
"""
        submitted = stub.SubmitSweep(pb.SubmitSweepRequest(spec=spec, source_name="notebook.yaml"), timeout=30)
        self.assertEqual(len(submitted.jobs), 2)
        ref = pb.SweepRef(sweep_id=submitted.sweep_id)

        last = None
        for update in stub.WatchSweep(ref, timeout=240):  # ends when every job has finished
            last = update
        self.assertEqual(pb.SweepState.Name(last.sweep.state), "SWEEP_FINISHED")
        self.assertEqual([pb.JobState.Name(j.state) for j in last.jobs], ["SUCCEEDED", "SUCCEEDED"])

        results = stub.GetResults(ref, timeout=30)
        self.assertEqual(len(results.ablation), 2)  # one row per optimizer
        for row in results.ablation:
            self.assertEqual(row.val_ppl.n, 1)
            self.assertGreater(row.val_ppl.mean, 1.0)

        text = b"".join(chunk.data for chunk in stub.ExportSweep(
            pb.ExportSweepRequest(sweep_id=submitted.sweep_id, table=pb.EXPORT_CURVES, format=pb.EXPORT_CSV),
            timeout=60)).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        losses = [r for r in rows if r["metric"] == "train_loss"]
        self.assertEqual(len(losses), 2 * 30)
        self.assertEqual({r["optimizer.name"] for r in losses}, {"adamw", "muon"})


if __name__ == "__main__":
    unittest.main()
