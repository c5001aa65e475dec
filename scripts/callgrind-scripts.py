#!/usr/bin/env python3
"""Redis instructions by script, and by phase of the commit script, from
the per-call dumps of a `CALLGRIND=redis scripts/bench-submit.sh` run
(docs/PERFORMANCE.md, "Where Redis' instructions go, by script").

    RVG_ARGS=--dump-after=evalShaCommand CALLGRIND=redis RATE=4 USERS=30 SECS=6 WARM=1 \\
      FIRST_USER=… scripts/bench-submit.sh
    python3 scripts/callgrind-scripts.py bench-results/submit-branch-<FIRST_USER>

Each dump holds what Redis executed since the previous one. With only
`--dump-after=evalShaCommand`, one dump is one script call (plus any plain
commands that came in between, such as the persistence worker's reads); it
is named by the commands it ran: `XADD` (the commit, which enqueues),
`ZMSCORE` without `HSET` (prepare_submit), `ZRANGEBYSCORE` with `HLEN` (the
read, due_and_serve), `XACK` (the worker's acknowledgement). Dumps with a
stream read or a script load are left out.

Adding `--dump-before=<command>Command` triggers (for example xadd,
hset, zmscore, zrange, pttl, zincrby) splits each commit at those
commands: the phases are printed as `<command before> -> <command after>`,
summed per commit when a transition repeats. Medians over the calls.
Needs a redis-server with symbols for the command names (Debian's has
them as dynamic symbols).
"""
import collections
import glob
import sys


def dumps(out):
    found = []
    for path in glob.glob(f"{out}/callgrind-redis.out.*"):
        trigger, total, text = None, None, []
        for line in open(path, errors="replace"):
            text.append(line)
            if line.startswith("desc: Trigger: --dump-"):
                trigger = line.rsplit("=", 1)[-1].strip()
            elif line.startswith("totals:"):
                total = int(line.split()[1])
        if total is not None:
            found.append((int(path.rsplit(".", 1)[1]), trigger, total, "".join(text)))
    return sorted(found)


def kind(text):
    if "xreadgroupCommand" in text or "xautoclaimCommand" in text or "scriptCommand" in text:
        return None
    if "xaddCommand" in text:
        return "commit"
    if "zmscoreCommand" in text and "hsetCommand" not in text:
        return "prepare"
    if "genericZrangebyscoreCommand" in text and "hlenCommand" in text:
        return "read"
    if "xackCommand" in text:
        return "ack"
    return "other"


def short(c):
    return c[: -len("Command")] if c.endswith("Command") else c


def report(title, by):
    print(title)
    for k, v in sorted(by.items(), key=lambda kv: -sorted(kv[1])[len(kv[1]) // 2]):
        v.sort()
        print(f"  {k:28s} calls {len(v):4d}  median {v[len(v) // 2] / 1e3:8.0f} K")


def main(out):
    ds = dumps(out)
    if not ds:
        sys.exit(f"no per-call dumps in {out}")
    if all(t is None or t == "evalShaCommand" for _, t, _, _ in ds):
        by = collections.defaultdict(list)
        for _, _, total, text in ds:
            k = kind(text)
            if k:
                by[k].append(total)
        report("instructions per script call", by)
        return
    phases = collections.defaultdict(list)
    i = 0
    while i < len(ds):
        if ds[i][1] != "xaddCommand":
            i += 1
            continue
        seq, prev, j = [], "xaddCommand", i + 1
        while j < len(ds) and ds[j][1] != "evalShaCommand":
            seq.append((f"{short(prev)} -> {short(ds[j][1])}", ds[j][2]))
            prev, j = ds[j][1], j + 1
        # A commit writes rows (more than one phase); an XADD alone is
        # another script's (the general path's enqueue).
        if j < len(ds) and seq:
            seq.append((f"{short(prev)} -> end", ds[j][2]))
            per = collections.Counter()
            for k, t in seq:
                per[k] += t
            for k, t in per.items():
                phases[k].append(t)
            phases["(commit from XADD on)"].append(sum(per.values()))
        i = j + 1
    report("commit script, instructions per phase", phases)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
