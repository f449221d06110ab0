"""A continuous-batching LLM server modelled in SimPy.

Requests arrive (one SimPy process releases them at their arrival times) and wait in
FCFS order. The server (a second process) runs iterations back to back while there is
work: each iteration decodes one token for every sequence past its prefill and
prefills up to ``chunk_tokens`` prompt tokens of the sequences still in prefill
(chunked prefill, Sarathi-Serve, OSDI 2024), sharing one pass over the weights.
Sequences join and leave the batch at iteration boundaries (iteration-level
scheduling, Orca, OSDI 2022), up to ``batch_cap`` of them.

The KV cache is paged (vLLM, SOSP 2023): blocks of ``block_tokens`` tokens out of the
budget. A waiting request is admitted when the batch has room and its prompt's blocks
(or, with ``admission: reserve``, its prompt and output's) are free. When a decoding
sequence needs a block and none is free, the newest sequence is preempted: its blocks
are freed and it is either recomputed later (its prompt and generated tokens prefilled
again) or swapped: its KV copied to the next memory tier and back when it resumes,
each copy holding the iteration for bytes / the slower tier's bandwidth.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import simpy

from dse.errors import DesignError
from dse.serving.cost import IterationCost
from dse.serving.requests import Request


@dataclass(eq=False)
class Sequence:
    req: Request
    #: tokens whose K,V are in the cache
    cached: int = 0
    #: tokens to prefill before decoding (the prompt; after a recompute, prompt + generated)
    target: int = 0
    generated: int = 0
    blocks: int = 0
    swapped: bool = False
    first_token_s: float | None = None
    finish_s: float | None = None
    preemptions: int = 0
    #: holds blocks in the running batch
    active: bool = False

    @property
    def prefilling(self) -> bool:
        return self.cached < self.target


@dataclass(frozen=True)
class SchedulerConfig:
    batch_cap: int
    chunk_tokens: int
    block_tokens: int
    total_blocks: int
    admission: str = "paged"
    preemption: str = "recompute"
    #: seconds and joules per KV byte swapped out or in (None: no lower tier to swap to)
    swap_s_per_byte: float | None = None
    swap_j_per_byte: float = 0.0
    kv_bytes_per_token: float = 0.0


@dataclass
class RunLog:
    """What the server did: one row per iteration and the sequences it served."""

    sequences: list[Sequence]
    iterations: list[tuple[float, float, int, int, float]] = field(default_factory=list)  # start, s, decode, prefill tokens, J
    peak_running: int = 0
    peak_blocks: int = 0
    preemptions: int = 0
    dynamic_energy_j: float = 0.0
    busy_s: float = 0.0
    end_s: float = 0.0


class Server:
    """One chip serving sequences. It is fed either by a request list (arrivals at their
    times) or by ``submit`` from another server; with ``handoff`` it only prefills, handing
    each sequence on once its prompt is in the cache (a disaggregated prefill chip)."""

    def __init__(self, env: simpy.Environment, cfg: SchedulerConfig, cost: IterationCost,
                 sequences: list[Sequence], *, expected: int | None = None, arrivals: bool = True,
                 handoff: Callable[[Sequence], None] | None = None):
        self.env, self.cfg, self.cost = env, cfg, cost
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.free = cfg.total_blocks
        self.handoff = handoff
        self.log = RunLog(sequences)
        self._arrived = env.event()
        #: sequences this server will still finish or hand on
        self._left = len(sequences) if expected is None else expected
        worst = max((self._blocks_for_full(s) for s in sequences), default=0)
        if worst > cfg.total_blocks:
            raise DesignError(f"a request of {worst * cfg.block_tokens} tokens needs {worst} KV blocks; "
                              f"the budget holds {cfg.total_blocks}")
        if arrivals:
            env.process(self._arrivals())
        env.process(self._serve())

    def submit(self, seq: Sequence) -> None:
        """A sequence joins the queue now."""
        self.waiting.append(seq)
        if not self._arrived.triggered:
            self._arrived.succeed()

    # ---- processes ------------------------------------------------------------------
    def _arrivals(self):
        for seq in self.log.sequences:
            if seq.req.arrival_s > self.env.now:
                yield self.env.timeout(seq.req.arrival_s - self.env.now)
            self.submit(seq)

    def _serve(self):
        while self._left:
            self._admit()
            if not self.running:
                self._arrived = self.env.event()
                yield self._arrived
                continue
            decode, chunks, extra_s, extra_j = self._plan()
            if not decode and not chunks:  # the only sequence was preempted: admit again
                continue
            logits = len(decode) + sum(1 for s, q in chunks if s.cached + q == s.target)
            t, e = self.cost.iteration(len(decode), sum(s.cached for s in decode),
                                       [(q, s.cached) for s, q in chunks], logits)
            t, e = t + extra_s, e + extra_j
            start = self.env.now
            yield self.env.timeout(t)
            self.log.iterations.append((start, t, len(decode), sum(q for _, q in chunks), e))
            self.log.dynamic_energy_j += e
            self.log.busy_s += t
            self._advance(decode, chunks)
        self.log.end_s = self.env.now

    # ---- scheduling decisions ---------------------------------------------------------
    def _blocks(self, tokens: int) -> int:
        return -(-tokens // self.cfg.block_tokens)

    def _blocks_for_full(self, s: Sequence) -> int:
        return self._blocks(s.req.prompt_tokens + s.req.output_tokens)

    def _admit(self) -> None:
        """FCFS: the oldest waiting sequence joins when the batch and the cache have room."""
        while self.waiting and len(self.running) < self.cfg.batch_cap:
            s = self.waiting[0]
            if self.cfg.admission == "reserve":
                need = self._blocks_for_full(s)
            else:
                need = self._blocks(max(s.target, s.cached))
            if need > self.free:
                break
            self.waiting.popleft()
            self.free -= need
            s.blocks = need
            s.active = True
            self.running.append(s)
        self.log.peak_running = max(self.log.peak_running, len(self.running))
        self.log.peak_blocks = max(self.log.peak_blocks, self.cfg.total_blocks - self.free)

    def _plan(self) -> tuple[list[Sequence], list[tuple[Sequence, int]], float, float]:
        """Sequences decoding this iteration, prefill chunks, and swap time and energy."""
        extra_s = extra_j = 0.0
        for s in self.running:  # sequences swapped back in pay the copy now
            if s.swapped:
                nbytes = s.cached * self.cfg.kv_bytes_per_token
                extra_s += nbytes * self.cfg.swap_s_per_byte
                extra_j += nbytes * self.cfg.swap_j_per_byte
                s.swapped = False
        decode = []
        for s in list(self.running):
            if s.prefilling or not s.active:
                continue
            need = self._blocks(s.cached + 1) - s.blocks
            while need > self.free:
                victim = self.running[-1]
                dt, dj = self._preempt(victim)
                extra_s, extra_j = extra_s + dt, extra_j + dj
                if victim is s:
                    break
            if not s.active:
                continue
            self.free -= max(need, 0)
            s.blocks += max(need, 0)
            decode.append(s)
        decode = [s for s in decode if s.active]
        chunks, budget = [], self.cfg.chunk_tokens
        for s in self.running:
            if budget and s.prefilling:
                q = min(s.target - s.cached, budget)
                chunks.append((s, q))
                budget -= q
        self.log.peak_blocks = max(self.log.peak_blocks, self.cfg.total_blocks - self.free)
        return decode, chunks, extra_s, extra_j

    def _preempt(self, s: Sequence) -> tuple[float, float]:
        self.running.remove(s)
        self.free += s.blocks
        s.blocks = 0
        s.active = False
        s.preemptions += 1
        self.log.preemptions += 1
        self.waiting.appendleft(s)
        if self.cfg.preemption == "swap" and self.cfg.swap_s_per_byte is not None:
            s.swapped = True
            nbytes = s.cached * self.cfg.kv_bytes_per_token
            return nbytes * self.cfg.swap_s_per_byte, nbytes * self.cfg.swap_j_per_byte
        # recompute: the KV is dropped; prompt and generated tokens are prefilled again
        s.target = s.req.prompt_tokens + s.generated
        s.cached = 0
        return 0.0, 0.0

    def _advance(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> None:
        now = self.env.now
        sampled = list(decode)
        for s in decode:
            s.cached += 1
        for s, q in chunks:
            s.cached += q
            if s.cached == s.target:
                sampled.append(s)
        done = False
        for s in sampled:
            s.generated += 1
            if s.first_token_s is None:
                s.first_token_s = now
            finished = s.generated >= s.req.output_tokens
            if finished:
                s.finish_s = now
            if finished or self.handoff is not None:
                s.active = False
                self.free += s.blocks
                s.blocks = 0
                self._left -= 1
                done = True
                if not finished:
                    self.handoff(s)
        if done:
            self.running = [s for s in self.running if s.active]


def run_server(cfg: SchedulerConfig, cost: IterationCost, requests: list[Request]) -> RunLog:
    """Serve ``requests`` to the end on one chip and return what happened."""
    env = simpy.Environment()
    server = Server(env, cfg, cost, [Sequence(r, target=r.prompt_tokens) for r in requests])
    env.run()
    if server._left:
        raise DesignError(f"{server._left} requests never finished (scheduler stalled)")
    return server.log


def run_disaggregated(prefill_cfg: SchedulerConfig, decode_cfg: SchedulerConfig, cost: IterationCost,
                      requests: list[Request], link_bytes_per_s: float) -> tuple[RunLog, RunLog]:
    """Prefill on one chip, decode on another (DistServe, OSDI 2024; Splitwise, ISCA 2024): a
    prefilled sequence's K,V cross a link of ``link_bytes_per_s`` (one transfer at a time, FIFO)
    and it joins the decode chip's queue; its first token comes from the prefill chip."""
    env = simpy.Environment()
    seqs = [Sequence(r, target=r.prompt_tokens) for r in requests]
    link = simpy.Resource(env, capacity=1)
    decode = Server(env, decode_cfg, cost, seqs, arrivals=False,
                    expected=sum(1 for s in seqs if s.req.output_tokens > 1))

    def transfer(seq: Sequence):
        with link.request() as turn:
            yield turn
            yield env.timeout(seq.cached * decode_cfg.kv_bytes_per_token / link_bytes_per_s)
        seq.target = seq.cached  # arrives prefilled: the decode chip only decodes it
        decode.submit(seq)

    prefill = Server(env, prefill_cfg, cost, seqs, handoff=lambda s: env.process(transfer(s)))
    env.run()
    left = prefill._left + decode._left
    if left:
        raise DesignError(f"{left} requests never finished (scheduler stalled)")
    return prefill.log, decode.log
