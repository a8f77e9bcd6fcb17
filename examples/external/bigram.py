#!/usr/bin/env python3
"""A training program of your own, swept by the service: a byte-level bigram language model in
plain Python (standard library only), trained with SGD on the softmax cross-entropy.

It shows the whole contract a program needs (docs/run-records.md):
  - its config is the job's config, a JSON file at $SWEEP_CONFIG (the sweep's base, ablations
    and grid applied; keys it does not know it ignores);
  - it writes run records, one JSON object per line, to the file descriptor $SWEEP_RECORDS_FD
    (or to stdout when run by hand);
  - it keeps a checkpoint in $SWEEP_CHECKPOINT_DIR (when the coordinator gives one) at every
    eval and when stopped, says so in a checkpoint record, and resumes from it: a job handed back
    or retried goes on from its last checkpoint, and its start record says from which step;
  - SIGTERM asks it to stop: it saves its checkpoint, writes a "stopped" summary and exits 130;
  - its exit code says how it ended: 0 succeeded, 3 diverged, 1 an error.

Keys read: seed, optimizer.lr, training.{max_steps, batch_tokens, eval_every or eval_every_tokens, eval_tokens},
data.max_corpus_bytes, metrics.target_losses. The text is Debian's GCIDE dictionary
(/usr/share/dictd/gcide.dict.dz, package dict-gcide), the built-in trainer's default corpus.
"""
import gzip
import json
import math
import os
import random
import signal
import sys
import time

stop_requested = False


def on_term(signum, frame):
    global stop_requested
    stop_requested = True


def records_out():
    fd = os.environ.get("SWEEP_RECORDS_FD")
    return os.fdopen(int(fd), "w", buffering=1) if fd else sys.stdout


def write(out, record):
    out.write(json.dumps(record, allow_nan=False) + "\n")
    out.flush()


class Checkpoint:
    """The model, the sampler's state and the evals so far, in one JSON file written atomically
    (a temporary file renamed over the old one), so a kill at any moment leaves a whole one."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "bigram-checkpoint.json") if directory else None

    def load(self):
        if not self.path or not os.path.exists(self.path):
            return None
        with open(self.path) as f:
            state = json.load(f)
        version, internal, gauss = state["random"]
        random.setstate((version, tuple(internal), gauss))
        return state

    def save(self, out, step, model, evals, train_seconds, elapsed_s):
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        temporary = self.path + ".tmp"
        with open(temporary, "w") as f:
            json.dump({"step": step, "logits": model.logits, "evals": evals, "train_seconds": train_seconds,
                       "elapsed_s": elapsed_s, "random": random.getstate()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)
        write(out, {"type": "checkpoint", "step": step, "path": self.path})


def finite_or_none(v):
    return v if math.isfinite(v) else None


class Bigram:
    """logits[a][b]: the score of byte b following byte a."""

    def __init__(self):
        self.logits = [[0.0] * 256 for _ in range(256)]

    def probabilities(self, a):
        row = self.logits[a]
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = sum(exps)
        return [e / total for e in exps]

    def loss(self, pairs):
        return sum(-math.log(max(self.probabilities(a)[b], 1e-300)) for a, b in pairs) / len(pairs)

    def sgd_step(self, pairs, lr):
        """One step on a batch; returns (loss, gradient norm)."""
        grads = {}
        loss = 0.0
        for a, b in pairs:
            p = self.probabilities(a)
            loss -= math.log(max(p[b], 1e-300))
            g = grads.setdefault(a, [0.0] * 256)
            for j in range(256):
                g[j] += p[j]
            g[b] -= 1.0
        n = len(pairs)
        norm = math.sqrt(sum(v * v for g in grads.values() for v in g)) / n
        for a, g in grads.items():
            row = self.logits[a]
            for j in range(256):
                row[j] -= lr * g[j] / n
        return loss / n, norm


def crossing(evals, target, tokens_per_step):
    """The first point where the val loss reaches `target`, interpolated between evals."""
    for (s0, l0, t0), (s1, l1, t1) in zip(evals, evals[1:]):
        if l1 <= target < l0:
            f = (l0 - target) / (l0 - l1)
            steps = s0 + f * (s1 - s0)
            return {"target": target, "reached": True, "steps": steps, "tokens": steps * tokens_per_step,
                    "seconds": t0 + f * (t1 - t0), "flops": None}
    if evals and evals[0][1] <= target:
        s, _, t = evals[0]
        return {"target": target, "reached": True, "steps": s, "tokens": s * tokens_per_step, "seconds": t, "flops": None}
    return {"target": target, "reached": False, "steps": None, "tokens": None, "seconds": None, "flops": None}


def main():
    signal.signal(signal.SIGTERM, on_term)
    config_path = os.environ.get("SWEEP_CONFIG") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not config_path:
        print("usage: bigram.py CONFIG.json (or SWEEP_CONFIG)", file=sys.stderr)
        return 1
    config = json.load(open(config_path))
    training = config.get("training", {})
    max_steps = int(training.get("max_steps", 100))
    batch = int(training.get("batch_tokens", 64))
    # An eval interval in tokens (the service's training.eval_every_tokens) wins over steps, so
    # every batch size is evaluated at the same token positions.
    eval_every = int(training.get("eval_every", 20))
    eval_every_tokens = int(training.get("eval_every_tokens", 0))
    if eval_every_tokens > 0:
        if eval_every_tokens % batch != 0:
            print(f"training.eval_every_tokens {eval_every_tokens} is not a multiple of "
                  f"training.batch_tokens {batch}", file=sys.stderr)
            return 1
        eval_every = eval_every_tokens // batch
    eval_tokens = int(training.get("eval_tokens", 512))
    lr = float(config.get("optimizer", {}).get("lr", 1.0))
    targets = config.get("metrics", {}).get("target_losses", [])
    limit = int(config.get("data", {}).get("max_corpus_bytes", 0)) or 1_000_000
    random.seed(int(config.get("seed", 1)))

    with gzip.open("/usr/share/dictd/gcide.dict.dz") as f:
        text = f.read(limit)
    split = int(len(text) * 0.995)
    train, val = text[:split], text[split:]
    val_pairs = [(val[i], val[i + 1]) for i in range(min(eval_tokens, len(val) - 1))]

    out = records_out()
    model = Bigram()
    started = time.monotonic()
    train_seconds = 0.0
    evals = []  # (step, val loss, train seconds)
    checkpoint = Checkpoint(os.environ.get("SWEEP_CHECKPOINT_DIR"))
    start_step = 0
    resumed = checkpoint.load()
    if resumed:
        start_step, model.logits = resumed["step"], resumed["logits"]
        evals, train_seconds = [tuple(e) for e in resumed["evals"]], resumed["train_seconds"]
        started -= resumed["elapsed_s"]  # the run's clock goes on from where it stopped
    write(out, {"type": "start", "version": 1, "start_step": start_step, "max_steps": max_steps})

    def evaluate(step):
        loss = model.loss(val_pairs)
        evals.append((step, loss, train_seconds))
        write(out, {"type": "eval", "step": step, "val_loss": finite_or_none(loss),
                    "val_ppl": finite_or_none(math.exp(min(loss, 700))), "tokens": step * batch,
                    "elapsed_s": time.monotonic() - started, "train_s": train_seconds})
        return loss

    if not resumed:
        evaluate(0)
    status, message, last_loss, step = "succeeded", "", float("nan"), start_step
    for step in range(start_step + 1, max_steps + 1):
        t0 = time.monotonic()
        starts = [random.randrange(len(train) - 1) for _ in range(batch)]
        last_loss, grad_norm = model.sgd_step([(train[i], train[i + 1]) for i in starts], lr)
        train_seconds += time.monotonic() - t0
        if not math.isfinite(last_loss):
            status, message = "diverged", f"loss became non-finite at step {step}"
        write(out, {"type": "step", "step": step, "train_loss": finite_or_none(last_loss), "lr": lr,
                    "grad_norm": finite_or_none(grad_norm), "tokens": step * batch,
                    "elapsed_s": time.monotonic() - started,
                    "metrics": {"bigram/rows_seen": sum(1 for row in model.logits if any(row))}})
        if status != "succeeded":
            break
        if step % eval_every == 0 or step == max_steps:
            evaluate(step)
            if step < max_steps:
                checkpoint.save(out, step, model, evals, train_seconds, time.monotonic() - started)
        if stop_requested and step < max_steps:
            if step % eval_every:
                checkpoint.save(out, step, model, evals, train_seconds, time.monotonic() - started)
            status, message = "stopped", f"stopped at step {step}"
            break

    final_val = evals[-1][1] if evals else float("nan")
    write(out, {"type": "summary", "status": status, "message": message, "steps": step,
                "final_train_loss": finite_or_none(last_loss), "final_val_loss": finite_or_none(final_val),
                "final_val_ppl": finite_or_none(math.exp(min(final_val, 700))), "tokens": step * batch,
                "train_s": train_seconds, "elapsed_s": time.monotonic() - started, "num_params": 256 * 256,
                "targets": [crossing(evals, float(t), batch) for t in targets]})
    return {"succeeded": 0, "diverged": 3, "stopped": 130}[status]


if __name__ == "__main__":
    sys.exit(main())
