#!/usr/bin/python3
"""overlap_trace.py — when each gradient bucket starts during backward,
read from a `mimo train --allreduce bucketed --trace T.json` trace: per
step of one rank, each layer's backward span, the buckets started at its
end, and the wait after backward. Shows how much of the gradient can be in
flight while backward still runs (the rest can only be waited for).

  /usr/bin/python3 tests/bench/overlap_trace.py T.json [--rank 0] [--steps 3]
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('trace')
    ap.add_argument('--rank', type=int, default=0)
    ap.add_argument('--steps', type=int, default=3, help='steps to show (after the first two)')
    args = ap.parse_args()
    ev = json.load(open(args.trace))['traceEvents']
    ev = sorted((e for e in ev if e.get('tid') == args.rank and e.get('ph') in ('X', 'i')),
                key=lambda e: e['ts'])
    fwds = [e for e in ev if e['name'] == 'forward']
    for k in range(2, min(len(fwds), 2 + args.steps)):
        t0 = fwds[k]['ts'] + fwds[k]['dur']  # backward starts where forward ends
        t1 = fwds[k + 1]['ts'] if k + 1 < len(fwds) else float('inf')
        st = [e for e in ev if t0 <= e['ts'] + e.get('dur', 0) < t1]
        wait = next((e for e in st if e['name'] == 'allreduce wait'), None)
        layers = [e for e in st if e['ph'] == 'X' and e.get('cat') == 'backward']
        end = wait['ts'] if wait else max(e['ts'] + e['dur'] for e in layers)
        print(f'step {k}: backward {(end - t0) / 1e3:.1f} ms, then wait '
              f'{(wait["dur"] / 1e3 if wait else 0):.1f} ms')
        for e in layers:
            a, b = max(e['ts'], t0), e['ts'] + e['dur']
            n = sum(1 for x in st if x['name'] == 'bucket start' and b - 1 <= x['ts'] <= b + 1000)
            print(f'  {e["name"]:>12}  {(a - t0) / 1e3:7.1f} .. {(b - t0) / 1e3:7.1f} ms'
                  f'{f"   then {n} bucket(s) start" if n else ""}')


if __name__ == '__main__':
    main()
