"""TraceRecorder's cheap paths (issue 28): record_many gives what record() gives one entry after
another (names, non-finite counts, digests, stored values, budget), and hashing on the worker
thread gives the digests of the bytes as they were when recorded."""

import hashlib
import io
import os
import threading
import time
import unittest
from contextlib import redirect_stderr
from unittest import mock

import helpers  # noqa: F401
import torch

from repro_probe import trace
from repro_probe.safetensors import tensor_bytes
from repro_probe.trace import ASYNC_MIN_BYTES, GROUP_MAX_BYTES, TraceRecorder

INF, NAN = float("inf"), float("nan")
BIG = max(ASYNC_MIN_BYTES, GROUP_MAX_BYTES) // 4 + 7  # float32 elements: one by one, on the worker


def sha(t):
    return hashlib.sha256(tensor_bytes(t)).hexdigest()


def mixed():
    """(name, tensor) of every kind a group meets: dtypes, NaN/Inf, 0-dim, empty, non-contiguous,
    requires_grad, and tensors large enough to leave the group."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=g, requires_grad=True)
    bad = torch.randn(40, generator=g)
    bad[[3, 9]] = NAN
    bad[17] = -INF
    return [
        ("param/w", w),
        ("param/bad", bad),
        ("param/t", torch.randn(5, 6, generator=g).t()),  # not contiguous
        ("param/scalar", torch.tensor(2.5)),
        ("param/empty", torch.zeros(0, 3)),
        ("param/half", torch.tensor([1.0, INF, 60000.0], dtype=torch.float16)),
        ("param/bf16", torch.tensor([NAN, 2.0], dtype=torch.bfloat16)),
        ("param/f64", torch.tensor([3e38, 3e38], dtype=torch.float64)),
        ("param/overflow", torch.tensor([3e38, 3e38])),  # finite values, the float32 sum overflows
        ("param/big", torch.randn(BIG, generator=g)),
        ("param/big_inf", torch.full((BIG,), INF)),
        ("buffer/count", torch.tensor(7)),
        ("buffer/mask", torch.tensor([True, False])),
    ]


def one_by_one(rec, pairs):
    for name, t in pairs:
        rec.record(name, t)


def run(pairs, record, store=True, budget=trace.STORE_BUDGET, steps=1):
    rec = TraceRecorder(torch, True, {0} if store else set(), budget=budget)
    for step in range(steps):
        rec.begin(step, 0)
        record(rec, pairs)
        rec.end()
    return rec


def stored(rec):
    return dict((k, (str(v.dtype), list(v.shape), tensor_bytes(v))) for k, v in rec.stored.items())


class RecordManyTest(unittest.TestCase):
    def test_same_as_record_one_by_one(self):
        pairs = mixed()
        for store in (True, False):
            a = run(pairs, TraceRecorder.record_many, store)
            b = run(pairs, one_by_one, store)
            self.assertEqual(a.steps, b.steps)
            self.assertEqual(stored(a), stored(b))
            self.assertEqual((a.stored_bytes, a.nonfinite_entries), (b.stored_bytes, b.nonfinite_entries))

    def test_nonfinite_counts_exact_and_digests_of_the_bytes(self):
        pairs = mixed()
        rec = run(pairs, TraceRecorder.record_many)
        got = dict((e["name"], e) for e in rec.steps[0]["entries"])
        want = {"param/bad": 3, "param/half": 1, "param/bf16": 1, "param/big_inf": BIG}
        for name, t in pairs:
            self.assertEqual(got[name]["nonfinite"], want.get(name, 0), name)
            self.assertEqual(got[name]["sha256"], sha(t), name)
        self.assertEqual(rec.nonfinite_entries, len(want))
        self.assertEqual(rec.stored["0|param/half"].dtype, torch.float32)  # widened as before

    def test_a_finite_group_then_one_nan(self):
        ts = [torch.ones(4) * i for i in range(20)]
        rec = run([("g/%d" % i, t) for i, t in enumerate(ts)], TraceRecorder.record_many, store=False)
        self.assertEqual([e["nonfinite"] for e in rec.steps[0]["entries"]], [0] * 20)
        ts[11][2] = NAN
        rec = run([("g/%d" % i, t) for i, t in enumerate(ts)], TraceRecorder.record_many, store=False)
        self.assertEqual([e["nonfinite"] for e in rec.steps[0]["entries"]], [0] * 11 + [1] + [0] * 8)

    def test_repeated_names_numbered_in_order(self):
        t = torch.ones(2)
        rec = TraceRecorder(torch, True, set())
        rec.begin(0, 0)
        rec.record("fwd/a", t)
        rec.record_many([("fwd/a", t), ("grad/x", t), ("fwd/a", torch.ones(BIG)), ("grad/x", t)])
        rec.record("fwd/a", t)
        rec.end()
        self.assertEqual([e["name"] for e in rec.steps[0]["entries"]],
                         ["fwd/a", "fwd/a#1", "grad/x", "fwd/a#2", "grad/x#1", "fwd/a#3"])

    def test_groups_split_into_chunks(self):
        pairs = [("p/%d" % i, torch.full((1000,), float(i))) for i in range(30)]
        with mock.patch.object(trace, "GROUP_BYTES", 10000):
            a = run(pairs, TraceRecorder.record_many)
        b = run(pairs, one_by_one)
        self.assertEqual(a.steps, b.steps)
        self.assertEqual(stored(a), stored(b))

    def test_budget_behaviour_unchanged(self):
        pairs = mixed()
        full = run(pairs, one_by_one).stored_bytes
        for budget in (0, 1000, full // 2, full - 1, full):
            logs = []
            recs = []
            for record in (TraceRecorder.record_many, one_by_one):
                err = io.StringIO()
                with redirect_stderr(err):
                    recs.append(run(pairs, record, budget=budget))
                logs.append(err.getvalue())
            a, b = recs
            self.assertEqual(a.steps, b.steps, budget)
            self.assertEqual(stored(a), stored(b), budget)
            self.assertEqual(a.stored_bytes, b.stored_bytes)
            self.assertEqual(logs[0], logs[1])
            self.assertEqual(a.steps[0]["stored"], budget >= full)
            self.assertEqual(logs[0].count("not stored"), 0 if budget >= full else 1)

    def test_optimizer_and_state(self):
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
        opt = torch.optim.Adam(model.parameters())
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        rec = TraceRecorder(torch, True, {0})
        rec.begin(0, 0)
        rec.record_optimizer(opt, model)
        rec.record_state(model)
        rec.end()
        want = []
        for name, p in model.named_parameters():
            for key in ("exp_avg", "exp_avg_sq"):
                want.append(("opt/%s.%s" % (name, key), sha(opt.state[p][key])))
        want += [("param/" + n, sha(p)) for n, p in model.named_parameters()]
        want += [("buffer/" + n, sha(b)) for n, b in model.named_buffers()]
        self.assertEqual([(e["name"], e["sha256"]) for e in rec.steps[0]["entries"]], want)

    def test_after_step_is_optimizer_then_state_in_one_group(self):
        def trained():
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
            opt = torch.optim.Adam(model.parameters())
            model(torch.randn(5, 3)).sum().backward()
            opt.step()
            model[1].running_var[2] = NAN  # a non-finite entry in the group
            return model, opt

        recs = []
        for together in (False, True):
            model, opt = trained()
            rec = TraceRecorder(torch, True, {0})
            rec.begin(0, 0)
            if together:
                rec.record_after_step(opt, model)
            else:
                rec.record_optimizer(opt, model)
                rec.record_state(model)
            rec.end()
            recs.append(rec)
        a, b = recs
        self.assertEqual(a.steps, b.steps)
        self.assertEqual(stored(a), stored(b))
        self.assertEqual(a.nonfinite_entries, 1)
        self.assertEqual(b.nonfinite_entries, 1)
        self.assertEqual(len(b.steps[0]["entries"]), 6 * 2 + 6 + 3)

    def test_named_reads_the_tensors_assigned_since(self):
        """named() finds where each parameter and buffer lives once, and reads them there at every
        call: what named_parameters()/named_buffers() give, reassigned tensors included."""
        torch.manual_seed(0)
        emb = torch.nn.Embedding(4, 3)
        out = torch.nn.Linear(3, 4, bias=False)
        out.weight = emb.weight  # tied: named_parameters() lists it once
        model = torch.nn.Sequential(emb, torch.nn.BatchNorm1d(3), out)
        rec = TraceRecorder(torch, True, set())

        def same():
            params, buffers = rec.named(model)
            self.assertEqual([(n, id(p)) for n, p in params], [(n, id(p)) for n, p in model.named_parameters()])
            self.assertEqual([(n, id(b)) for n, b in buffers], [(n, id(b)) for n, b in model.named_buffers()])

        same()
        self.assertEqual([n for n, _ in rec.named(model)[0]], ["0.weight", "1.weight", "1.bias"])
        model[1].weight = torch.nn.Parameter(torch.ones(3))
        model[1].running_mean = torch.full((3,), 2.0)
        same()
        model[1].bias = None
        same()
        rec.begin(0, 0)
        rec.record_grads(model)  # no gradients yet: nothing
        model(torch.tensor([1, 2])).sum().backward()
        rec.record_grads(model)
        rec.end()
        self.assertEqual([e["name"] for e in rec.steps[0]["entries"]], ["grad/0.weight", "grad/1.weight"])
        other = torch.nn.Linear(2, 2)  # another model: its own slots
        self.assertEqual([n for n, _ in rec.named(other)[0]], ["weight", "bias"])

    def test_a_subclass_that_overrides_record_gets_every_entry(self):
        seen = []

        class Filtering(TraceRecorder):
            def record(self, name, tensor):
                seen.append(name)
                if not name.startswith("grad/"):
                    TraceRecorder.record(self, name, tensor)

        rec = Filtering(torch, True, set())
        rec.begin(0, 0)
        rec.record_many([("grad/a", torch.ones(2)), ("param/a", torch.ones(2))])
        rec.end()
        self.assertEqual(seen, ["grad/a", "param/a"])
        self.assertEqual([e["name"] for e in rec.steps[0]["entries"]], ["param/a"])

    def test_disabled_or_closed_records_nothing(self):
        rec = TraceRecorder(torch, False, set())
        rec.begin(0, 0)
        rec.record_many([("a", torch.ones(2))])
        rec.end()
        self.assertEqual(rec.steps, [])
        rec = TraceRecorder(torch, True, set())
        rec.record_many([("a", torch.ones(2))])  # no step open
        self.assertEqual(rec.steps, [])


def background(rec):
    with mock.patch.dict(os.environ, {trace.ASYNC_HASH_ENV: "1"}):
        rec.hash_in_background()
    return rec


class Gate(object):
    """A marker in the worker's queue that holds the worker until `event` is set."""

    def __init__(self, event):
        self.event = event

    def set(self):
        self.event.wait()


class BackgroundHashTest(unittest.TestCase):
    def test_switch(self):
        cases = (("0", 8, 0.0, False), ("", 1, 0.0, False), ("", 2, 1.9, True), ("", 2, 2.0, False),
                 ("", 16, 9.0, True), ("1", 1, 5.0, True))
        for value, cpus, load, want in cases:
            rec = TraceRecorder(torch, True, set())
            with mock.patch.dict(os.environ, {trace.ASYNC_HASH_ENV: value}), \
                    mock.patch.object(trace, "_usable_cpus", return_value=cpus), \
                    mock.patch.object(os, "getloadavg", return_value=(load, load, load)):
                rec.hash_in_background()
            self.assertEqual(rec._hasher is not None, want, (value, cpus, load))
        rec = TraceRecorder(torch, False, set())
        background(rec)
        self.assertIsNone(rec._hasher)  # trace off: no thread

    def test_async_and_sync_digests_identical(self):
        g = torch.Generator().manual_seed(1)
        group = [("opt/%d" % i, torch.randn(4000, generator=g)) for i in range(12)]  # hashed as one job
        single = [("fwd/x", torch.randn(3, BIG, generator=g)[:, ::3]),  # not contiguous
                  ("fwd/h", torch.randn(BIG, generator=g).half()),
                  ("fwd/y", torch.randn(BIG, generator=g))]
        pairs = mixed() + group + single

        def record(rec, pairs):
            rec.record_many(pairs[:-3])
            for name, t in pairs[-3:]:
                rec.record(name, t)

        for store in (True, False):
            sync = TraceRecorder(torch, True, {0, 2} if store else set())
            par = background(TraceRecorder(torch, True, {0, 2} if store else set()))
            for rec in (sync, par):
                for step in range(3):
                    rec.begin(step, 0)
                    record(rec, pairs)
                    rec.end()
            self.assertIsNotNone(par._hasher)
            self.assertEqual(par.steps, sync.steps)
            self.assertEqual(stored(par), stored(sync))
            self.assertTrue(all(e["sha256"] for s in par.steps for e in s["entries"]))

    def test_mutation_after_record_does_not_change_the_digest(self):
        for store in (False, True):
            rec = background(TraceRecorder(torch, True, {0} if store else set()))
            x = torch.arange(BIG, dtype=torch.float32)
            want = sha(x)
            gate = threading.Event()
            rec._hasher._jobs.put(Gate(gate))  # the worker reads nothing before the change below
            rec.begin(0, 0)
            rec.record("fwd/x", x)
            rec.end()
            x.add_(1)  # what an inplace ReLU or the optimizer does to a recorded tensor
            gate.set()
            self.assertEqual(rec.steps[0]["entries"][0]["sha256"], want, store)
            if store:
                self.assertEqual(sha(rec.stored["0|fwd/x"]), want)

    def test_snapshots_reused_across_steps(self):
        rec = background(TraceRecorder(torch, True, set()))
        x = torch.randn(BIG)
        for step in range(4):
            rec.begin(step, 0)
            rec.record("fwd/x", x)
            rec.end()
            rec.wait_hashes()
        self.assertEqual([len(v) for v in rec._hasher._free.values()], [1])
        self.assertEqual(set(e["sha256"] for s in rec.steps for e in s["entries"]), {sha(x)})

    def test_finish_ends_the_worker(self):
        rec = background(TraceRecorder(torch, True, set()))
        thread = rec._hasher._thread
        x = torch.randn(BIG)
        rec.begin(0, 0)
        rec.record("fwd/x", x)
        rec.finish_hashing()
        rec.record("fwd/y", x)  # after the end of training: hashed here
        rec.end()
        thread.join(10)
        self.assertFalse(thread.is_alive())
        self.assertIsNone(rec._hasher)
        self.assertEqual([e["sha256"] for e in rec.steps[0]["entries"]], [sha(x)] * 2)

    def test_worker_error_raises_on_wait(self):
        rec = background(TraceRecorder(torch, True, set()))
        with mock.patch.object(trace, "_sha256", side_effect=MemoryError("no")):
            rec.begin(0, 0)
            rec.record("fwd/x", torch.ones(BIG))
            rec.end()
            # the worker done with the failed job before anyone waits (it was lost then)
            hasher = rec._hasher
            while hasher._done < hasher._queued:
                time.sleep(0.001)
            with self.assertRaises(MemoryError):
                rec.wait_hashes()


DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.uint8,
          torch.bool)


def random_tensor(rng, gen):
    """A tensor of random raw bits (NaN payloads, ±Inf, -0 and subnormals included) in a random dtype,
    sized like a trace entry: mostly small (grouped), some just under and over GROUP_MAX_BYTES, some
    of ASYNC_MIN_BYTES or more (the worker when it is on), 0-dim and empty ones; a third are strided views."""
    dtype = rng.choice(DTYPES)
    size = torch.tensor([], dtype=dtype).element_size()
    pick = rng.random()
    if pick < 0.05:
        shape = ()
    elif pick < 0.1:
        shape = (0, rng.randint(1, 3))
    elif pick < 0.2:
        shape = (GROUP_MAX_BYTES // size + rng.choice((-1, 0, 1)),)
    elif pick < 0.25:
        shape = (ASYNC_MIN_BYTES // size + rng.randint(0, 50),)
    else:
        shape = (rng.randint(1, 40), rng.randint(1, 9))
    n = 1
    for d in shape:
        n *= d
    strided = n > 1 and rng.random() < 0.33
    raw = torch.randint(0, 256, (n * (2 if strided else 1) * size,), dtype=torch.uint8, generator=gen)
    if dtype == torch.bool:
        raw = raw & 1
    base = raw.view(dtype)
    if strided:  # every other element, from the second: not contiguous
        return base.as_strided(shape, [2 * k for k in torch.empty(shape).stride()], 1)
    return base.reshape(shape)


def mutated(rng, t):
    """A tensor of t's shape and strides with one change to t's raw bits: one bit flipped, or two to
    four bits in different bytes, or two elements of different bits swapped; a quarter of the flips
    hit the first byte and a quarter the last (an entry's edges inside a group's flat copy). (None,
    None) when t has no bits to change that way (empty; a swap of equal elements)."""
    import numpy as np
    data = bytearray(tensor_bytes(t))
    if not data:
        return None, None
    size = t.element_size()
    kind = rng.choice(("bit", "bits", "swap") if t.numel() > 1 else ("bit", "bits"))
    if t.dtype == torch.bool:  # a bool byte holds 0 or 1: change a value, not any bit of the byte
        data[rng.randrange(len(data))] ^= 1
        kind = "bool"
    elif kind == "swap":
        i, j = rng.sample(range(t.numel()), 2)
        a, b = data[i * size:(i + 1) * size], data[j * size:(j + 1) * size]
        if a == b:
            return None, None
        data[i * size:(i + 1) * size], data[j * size:(j + 1) * size] = b, a
    else:
        count = 1 if kind == "bit" else min(rng.randint(2, 4), len(data))
        where = rng.random()
        positions = {0 if where < 0.25 else len(data) - 1 if where < 0.5 else rng.randrange(len(data))}
        while len(positions) < count:
            positions.add(rng.randrange(len(data)))
        for i in positions:
            data[i] ^= 1 << rng.randrange(8)
    flat = torch.from_numpy(np.frombuffer(bytes(data), dtype=np.uint8).copy()).view(t.dtype).reshape(t.shape)
    out = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype)
    out.copy_(flat)  # a copy within one dtype moves the bits as they are
    return out, kind


class DigestPropertyTest(unittest.TestCase):
    """Every digest is the sha256 of its entry's bytes, and a change to an entry's raw bits (single and
    multi-bit flips, swapped elements, at its edges inside a group's flat copy) changes that entry's
    digest and no other's: random groups of random dtypes, shapes and layouts, through record_many's
    flat copies (in chunks, some of them split small), record() one by one, and the worker thread."""

    TRIALS = 1500

    def test_every_change_to_an_entry_changes_its_digest_only(self):
        import random
        rng = random.Random(28)
        gen = torch.Generator().manual_seed(28)
        kinds = {}
        for trial in range(self.TRIALS):
            pairs = [("p/%d" % i, random_tensor(rng, gen)) for i in range(rng.randint(1, 10))]
            j = rng.randrange(len(pairs))
            changed, kind = mutated(rng, pairs[j][1])
            if changed is None:
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
            after = list(pairs)
            after[j] = (pairs[j][0], changed)
            many = rng.random() < 0.75
            worker = rng.random() < 0.3
            store = rng.random() < 0.2
            chunk = rng.choice((trace.GROUP_BYTES, 64, 4096))
            got = []
            with mock.patch.object(trace, "GROUP_BYTES", chunk):
                for these in (pairs, after):
                    rec = TraceRecorder(torch, True, {0} if store else set())
                    if worker:
                        background(rec)
                    run_one = TraceRecorder.record_many if many else one_by_one
                    rec.begin(0, 0)
                    run_one(rec, these)
                    rec.end()
                    got.append([e["sha256"] for e in rec.steps[0]["entries"]])
                    rec.finish_hashing()
            where = (trial, kind, j, [(str(t.dtype), tuple(t.shape), t.is_contiguous()) for _, t in pairs])
            self.assertEqual(got[0], [sha(t) for _, t in pairs], where)
            self.assertEqual(got[1], [sha(t) for _, t in after], where)
            self.assertEqual([a == b for a, b in zip(got[0], got[1])],
                             [i != j for i in range(len(pairs))], where)
        self.assertEqual(set(kinds), {"bit", "bits", "swap", "bool"})
        self.assertGreater(sum(kinds.values()), self.TRIALS * 0.8)


class TrainRunTest(unittest.TestCase):
    """The probe's cnn (module outputs of 128 KiB to 512 KiB, hashed on the worker when it is on,
    a stored step) with the worker forced on and off: the same artifacts, byte for byte."""

    def test_artifacts_identical(self):
        got = helpers.cnn_artifacts(self, [{trace.ASYNC_HASH_ENV: "0"}, {trace.ASYNC_HASH_ENV: "1"}], "trace-record-")
        self.assertEqual(got["trace.json"][0], got["trace.json"][1])
        self.assertEqual(got["tensors.safetensors"][0], got["tensors.safetensors"][1])


if __name__ == "__main__":
    unittest.main()
