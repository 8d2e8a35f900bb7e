#!/usr/bin/python3
"""multihost.py — the gradient allreduce between hosts, measured: the
large benchmark network (configs/bench/large.yaml) on 2 hosts x 1 rank of
scripts/hosts.sh (network namespaces on this machine, TCP between them),
links limited to 1 and 10 Gbit/s (tc), against the ring cost model
2(p-1)/p * N_bytes / bandwidth.

For each link rate it checks the raw TCP rate of the link (a socket
stream from host 1 to host 2); times the allreduce of the gradient alone
(allreduce.c: MPI_Allreduce, and 2 MiB MPI_Iallreduce buckets, with 1 and
2 TCP connections per pair of ranks); and runs `mimo bench` for each form
(blocking, bucketed, +links2: btl_tcp_links 2, +thread: Open MPI's TCP
progress thread) and global batch, alternately, in rounds. It reports
medians and ranges, and

  hidden = 1 - (wait after backward, bucketed) / (bucketed allreduce alone)

--from-log LOG... reports earlier runs (together) without measuring.

Not a test: nothing here is run by ctest or CI, and nothing is asserted.
Needs root (network namespaces), a built mimo, Open MPI (mpicc). ~20-40 min.

  /usr/bin/python3 tests/bench/multihost.py [--mimo build/mimo]
      [--rates 1gbit,10gbit] [--batches 256,1024] [--rounds 3] [--steps 8]
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
HOSTS = os.path.join(SRC, 'scripts', 'hosts.sh')
ETH_EFF = 1448 / 1514  # TCP payload per Ethernet frame (MTU 1500, timestamps)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def link_rate(nbytes=200_000_000):
    """Raw TCP payload rate host 1 -> host 2, in bit/s (python sockets)."""
    recv = f'''
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.200.0.12", 5201)); s.listen(1); c, _ = s.accept()
got, t0 = 0, None
while got < {nbytes}:
    b = c.recv(1 << 20)
    if not b: break
    t0 = t0 or time.time(); got += len(b)
print(got * 8 / (time.time() - t0))'''
    send = f'''
import socket, time
for _ in range(50):
    try: c = socket.create_connection(("10.200.0.12", 5201)); break
    except OSError: time.sleep(0.1)
buf = bytes(1 << 20)
for _ in range({nbytes} // len(buf) + 1): c.sendall(buf)
c.close()'''
    r = subprocess.Popen(['bash', HOSTS, 'exec', 'mimo-h2', '/usr/bin/python3', '-c', recv],
                         stdout=subprocess.PIPE, text=True)
    subprocess.run(['bash', HOSTS, 'exec', 'mimo-h1', '/usr/bin/python3', '-c', send], check=True)
    out, _ = r.communicate(timeout=120)
    return float(out.strip())


def variant(name):
    """'bucketed+links2+thread' -> ('bucketed', extra mpirun options)"""
    parts = name.split('+')
    extra = []
    for p in parts[1:]:
        if p.startswith('links'):
            extra += ['--mca', 'btl_tcp_links', p[5:]]
        elif p == 'thread':
            extra += ['--mca', 'btl_tcp_progress_thread', '1']
        else:
            raise SystemExit(f'unknown variant {p!r} in {name!r}')
    return parts[0], extra


def mpirun(extra, *cmd, timeout=300):
    """The output of a 2-rank run on the hosts; '' if it hangs past timeout."""
    opts = sh('bash', HOSTS, 'opts', '1').split()
    full = ['mpirun'] + opts + extra + ['-np', '2', '-x', 'OMP_NUM_THREADS=1'] + list(cmd)
    p = subprocess.Popen(full, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        return p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # mpirun and its daemons, ranks
        p.communicate()
        print(f'# hung for {timeout} s, killed: {" ".join(extra + list(cmd[1:]))}', flush=True)
        return ''


def bench(args, name, batch):
    mode, extra = variant(name)
    out = mpirun(extra, args.mimo, 'bench', args.config, '--steps', str(args.steps),
                 '--warmup', str(args.warmup), '--segments', '1', '--allreduce', mode,
                 '--set', f'train.batch_size={batch}')

    def ms(key):
        m = re.search(rf'^\s*{key}\s+([0-9.]+) ms', out, re.M)
        return float(m.group(1)) if m else float('nan')
    m = re.search(r'([0-9]+) parameters', out)
    g = re.search(r'sgemm 1024\^3\s+([0-9.]+)', out)
    return {'step': ms('step'), 'data': ms('data'), 'forward': ms('forward'),
            'backward': ms('backward'), 'optimizer': ms('optimizer'), 'sum': ms('gradient sum'),
            'params': int(m.group(1)) if m else 0, 'sgemm': float(g.group(1)) if g else float('nan')}


def alone(args, exe, links, nvalues):
    """MPI_Allreduce and bucketed MPI_Iallreduce of the gradient, nothing else."""
    out = mpirun(['--mca', 'btl_tcp_links', str(links)], exe, str(nvalues), str(args.steps))
    got = dict(re.findall(r'^(\w+)_ms ([0-9.]+)', out, re.M))
    return float(got.get('blocking', 'nan')), float(got.get('bucketed', 'nan'))


def rate_bits(r):
    m = re.fullmatch(r'([0-9.]+)(k|m|g)bit', r)
    return float(m.group(1)) * {'k': 1e3, 'm': 1e6, 'g': 1e9}[m.group(2)] if m else None


def med(rows, key, **sel):
    v = [r[key] for r in rows if all(r[k] == x for k, x in sel.items()) and r[key] == r[key]]
    return statistics.median(v) if v else float('nan')


def span(rows, key, **sel):
    v = [r[key] for r in rows if all(r[k] == x for k, x in sel.items()) and r[key] == r[key]]
    return f'{min(v):.0f}–{max(v):.0f}' if v else '–'


def parse_logs(paths):
    """The per-run lines of earlier outputs of this script, to report them
    again or together (rounds from several sessions)."""
    rows, links, link = [], [], {}
    run = re.compile(r'^\s+(\S+) batch\s+(\d+) (\S+)\s+round (\d+): step\s+([0-9.]+) ms, forward\s+'
                     r'([0-9.]+), backward\s+([0-9.]+), gradient sum\s+([0-9.]+), sgemm ([0-9.na]+)')
    ar = re.compile(r'^\s+(\S+) allreduce alone, (\d) TCP link\(s\): MPI_Allreduce ([0-9.]+) ms, '
                    r'bucketed MPI_Iallreduce ([0-9.]+) ms')
    ln = re.compile(r'^# link (\S+): raw TCP ([0-9.]+) Gbit/s')
    for path in paths:
        for line in open(path):
            if (m := run.match(line)):
                rows.append({'rate': m[1], 'batch': m[2], 'form': m[3], 'round': int(m[4]),
                             'step': float(m[5]), 'forward': float(m[6]), 'backward': float(m[7]),
                             'sum': float(m[8]), 'optimizer': float('nan'), 'params': 0,
                             'sgemm': float(m[9])})
            elif (m := ar.match(line)):
                links.append({'rate': m[1], 'links': int(m[2]), 'blocking': float(m[3]),
                              'bucketed': float(m[4])})
            elif (m := ln.match(line)):
                link[m[1]] = float(m[2]) * 1e9
    return rows, links, link


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mimo', default=os.path.join(SRC, 'build', 'mimo'))
    ap.add_argument('--config', default=os.path.join(SRC, 'configs', 'bench', 'large.yaml'))
    ap.add_argument('--rates', default='1gbit,10gbit', help="tc rates; 'none' = unlimited")
    ap.add_argument('--batches', default='256,1024', help='global batches (2 ranks)')
    ap.add_argument('--forms', default='blocking,bucketed,blocking+links2,bucketed+links2',
                    help='--allreduce form, +linksK: btl_tcp_links K (TCP connections per '
                    'pair of ranks), +thread: btl_tcp_progress_thread 1 (it hung twice at '
                    '10 Gbit/s here, Open MPI 4.1.4)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=8)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--params', type=int, default=10491648, help='gradient values, when a log '
                    'has none (large.yaml: 10491648)')
    ap.add_argument('--from-log', nargs='+', metavar='LOG',
                    help='measure nothing: report the runs in these outputs of this script')
    args = ap.parse_args()
    if args.from_log:
        rows, links, link = parse_logs(args.from_log)
        uniq = lambda k: list(dict.fromkeys(r[k] for r in rows))
        report(rows, links, link, args, uniq('rate'), uniq('batch'), uniq('form'))
        return 0
    args.mimo = os.path.abspath(args.mimo)
    if os.geteuid() == 0:
        os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT', '1')
        os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT_CONFIRM', '1')
    os.environ.setdefault('OMPI_MCA_btl_vader_single_copy_mechanism', 'none')
    # the micro-benchmark: the collective algorithms mimo picks (apps/cli.c)
    env_alg = {'OMPI_MCA_coll_libnbc_iallreduce_algorithm': '3',
               'OMPI_MCA_coll_tuned_use_dynamic_rules': '1',
               'OMPI_MCA_coll_tuned_allreduce_algorithm': '4'}
    for k, v in env_alg.items():
        os.environ.setdefault(k, v)
    tmp = tempfile.mkdtemp(prefix='mimo-multihost-')
    exe = os.path.join(tmp, 'allreduce')
    subprocess.run(['mpicc', '-O2', '-o', exe, os.path.join(HERE, 'allreduce.c')], check=True)
    had = os.path.exists(os.path.join(os.environ.get('MIMO_HOSTS_DIR', '/run/mimo-hosts'), 'state'))
    rates, batches, forms = args.rates.split(','), args.batches.split(','), args.forms.split(',')

    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
                if l.startswith('model name')), '?')
    print(f'# multihost.py {time.strftime("%Y-%m-%d %H:%M")}: {cpu}, {os.cpu_count()} cores, '
          f'OPENBLAS_CORETYPE={os.environ.get("OPENBLAS_CORETYPE", "")}, '
          f'load {os.getloadavg()[0]:.1f} at start', flush=True)
    rows, links, link = [], [], {}
    try:
        for rate in rates:
            up = ['bash', HOSTS, 'up', '2'] + ([] if rate == 'none' else ['--rate', rate])
            subprocess.run(up, check=True, capture_output=True)
            link[rate] = link_rate()
            print(f'# link {rate}: raw TCP {link[rate] / 1e9:.3f} Gbit/s (one stream, host 1 -> 2)',
                  flush=True)
            nvalues = None
            for rnd in range(args.rounds):
                for batch in batches:
                    for form in forms:
                        r = bench(args, form, int(batch))
                        r.update(rate=rate, batch=batch, form=form, round=rnd)
                        rows.append(r)
                        nvalues = r['params'] or nvalues
                        print(f'  {rate:>7} batch {batch:>5} {form:<24} round {rnd}: step '
                              f'{r["step"]:8.1f} ms, forward {r["forward"]:6.1f}, backward '
                              f'{r["backward"]:6.1f}, gradient sum {r["sum"]:7.1f}, sgemm '
                              f'{r["sgemm"]:.0f} GFLOP/s', flush=True)
                for k in (1, 2):
                    blk, bkt = alone(args, exe, k, nvalues)
                    links.append({'rate': rate, 'links': k, 'blocking': blk, 'bucketed': bkt})
                    print(f'  {rate:>7} allreduce alone, {k} TCP link(s): MPI_Allreduce {blk:.1f} ms, '
                          f'bucketed MPI_Iallreduce {bkt:.1f} ms', flush=True)
    finally:
        if not had:
            subprocess.run(['bash', HOSTS, 'down'], capture_output=True)
        else:
            print('# hosts were up before: left up (with the last rate)')
        shutil.rmtree(tmp, ignore_errors=True)

    report(rows, links, link, args, rates, batches, forms)


def report(rows, links, link, args, rates, batches, forms):
    nvalues = max([r['params'] for r in rows] + [args.params])
    nbytes, p = 4 * nvalues, 2
    print(f'\n# {nvalues} parameters = {nbytes / 1e6:.2f} MB of float32 gradients; p = {p} hosts '
          f'x 1 rank x 1 thread; medians of {args.rounds} rounds ({args.steps} timed steps each); '
          f'load {os.getloadavg()[0]:.1f} at end')
    print('\n## The allreduce alone (tests/bench/allreduce.c, after a barrier; median (range))\n')
    print('| link | raw TCP | ring model 2(p-1)/p·N/B (TCP payload) | MPI_Allreduce, 1 TCP link | '
          '2 links | bucketed MPI_Iallreduce, 1 link | 2 links |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for rate in rates:
        bw = rate_bits(rate)
        model = 2 * (p - 1) / p * nbytes * 8 / (bw * ETH_EFF) if bw else float('nan')
        c = {(k, f): f'{med(links, f, rate=rate, links=k):.0f} ms ({span(links, f, rate=rate, links=k)})'
             for k in (1, 2) for f in ('blocking', 'bucketed')}
        print(f'| {rate} | {link[rate] / 1e9:.2f} Gbit/s | {model * 1e3:.0f} ms | '
              f'{c[1, "blocking"]} | {c[2, "blocking"]} | {c[1, "bucketed"]} | {c[2, "bucketed"]} |')
    print('\n## Training steps (mimo bench, rank 0, ms)\n')
    print('| link | global batch | form | step (range) | forward | backward | '
          'gradient sum (range) | samples/s |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for rate in rates:
        for batch in batches:
            for form in forms:
                m = {k: med(rows, k, rate=rate, batch=batch, form=form)
                     for k in ('step', 'forward', 'backward', 'optimizer', 'sum')}
                print(f'| {rate} | {batch} | {form} | {m["step"]:.0f} '
                      f'({span(rows, "step", rate=rate, batch=batch, form=form)}) | '
                      f'{m["forward"]:.0f} | {m["backward"]:.0f} | '
                      f'{m["sum"]:.0f} ({span(rows, "sum", rate=rate, batch=batch, form=form)}) | '
                      f'{1e3 * int(batch) / m["step"]:.0f} |')
    print('\n## How much of the communication the bucketed form hides\n')
    print('exposed = the wait after backward (the bucketed run\'s gradient sum); hidden = 1 - '
          'exposed / (bucketed allreduce alone, same links); overlap cost = its backward - the '
          'blocking run\'s backward (MPI_Test and the TCP stack on the same cores). Only backward '
          'can overlap, so hidden <= backward / alone.\n')
    print('| link | global batch | form | allreduce alone ms | exposed ms (range) | hidden | '
          'backward ms | overlap cost ms | backward / alone |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for rate in rates:
        for batch in batches:
            for form in forms:
                mode, _ = variant(form)
                if mode != 'bucketed':
                    continue
                k = 2 if '+links2' in form else 1
                base = 'blocking' + ('+links2' if k == 2 else '')
                t_alone = med(links, 'bucketed', rate=rate, links=k)
                wait = med(rows, 'sum', rate=rate, batch=batch, form=form)
                bwd = med(rows, 'backward', rate=rate, batch=batch, form=form)
                cost = bwd - med(rows, 'backward', rate=rate, batch=batch, form=base)
                print(f'| {rate} | {batch} | {form} | {t_alone:.0f} | {wait:.0f} '
                      f'({span(rows, "sum", rate=rate, batch=batch, form=form)}) | '
                      f'{100 * (1 - wait / t_alone):.0f}% | {bwd:.0f} | {cost:+.0f} | '
                      f'{100 * min(1, bwd / t_alone):.0f}% |')

if __name__ == '__main__':
    sys.exit(main())
