#!/usr/bin/env python
"""Run a source document's own TensorFlow code, patched as little as possible.

    python originals/run_original.py TARGET --source PATH --seed N --out DIR

TARGET       source PATH                                    what runs
nb002        shared/seeds/002_*.txt (notebook as text)      cells In [1]..In [5]
nb001        shared/seeds/001_*.txt (notebook as text)      cells In [19]..In [None]
aae-semi     a work tree of Naresh1318/Adversarial_Autoencoder   semi_supervised_adversarial_autoencoder.py
aae-basic    the same work tree                             basic_nn_classifier.py

The code is read from PATH at run time (never stored in this repository).
For a notebook the code cells are cut out of the text: each ``In [..]:`` block
is split at blank lines and the longest leading run of paragraphs that parses
as Python is kept, less trailing paragraphs that are only literals or comments
(the printed ``Out`` values such as ``(60000, 28, 28)``).

Each PATCHES entry below is one textual change (old -> new, which must occur
exactly ``count`` times); nothing else is changed.  The patched program is
written to --workdir (outside the repository) and run there in a child Python
with one thread; its stdout/stderr, a CSV of the accuracies it prints and a
result.json go to --out.
"""
import argparse
import ast
import csv
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# --------------------------------------------------------------------------
# patches: (cell or file, old, new, count, kind, why)
# --------------------------------------------------------------------------
EPOCH_LOG_002 = (
    "            print('[harness] epoch {0} test_accuracy {1:.6f}'.format(epoch, "
    "sess.run(model.accuracy, feed_dict={model.is_training: False, "
    "model.X: mnist.test.images, model.y: mnist.test.labels})))\n")

PATCHES = {
    'nb002': [
        ('In [1]', 'import tensorflow as tf\n',
         'import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\n', 1, 'tf2-shim',
         'TF1 API and graph semantics under TF 2.21'),
        ('In [1]', 'from tensorflow.examples.tutorials.mnist import input_data\n',
         'import tf1_mnist as input_data\n', 1, 'data',
         'TF1 read_data_sets/DataSet semantics (reimplemented in originals/tf1_mnist.py) '
         'on resources/mnist.npz instead of downloading'),
        ('In [1]', 'tf.reset_default_graph()\n',
         'tf.reset_default_graph()\ntf.set_random_seed(SEED)\n', 1, 'seed',
         'graph-level seed for the 0-4 model and the transfer stage'),
        ('In [5]', 'tf.reset_default_graph()\n',
         'tf.reset_default_graph()\ntf.set_random_seed(SEED)\n', 1, 'seed',
         'graph-level seed for the scratch model (the reset drops the seed)'),
        ('In [1]', 'tf.contrib.layers.variance_scaling_initializer()',
         'contrib_variance_scaling_initializer()', 1, 'tf2-shim',
         'tf.contrib is gone; same semantics (factor 2, FAN_IN, truncated normal, '
         'stddev sqrt(1.3*2/n)) in originals/tf1_shims.py'),
        ('In [1]', '            if epoch % 10 == 0:\n',
         EPOCH_LOG_002 + '            if epoch % 10 == 0:\n', 1, 'logging',
         'also print test accuracy after every epoch (6 decimals), so the last '
         'epoch (24 or 99), which the notebook never prints, is recorded; '
         'evaluation with is_training=False: no update ops, no random ops'),
    ],
    'nb001': [
        ('In [20]', 'tf.keras.datasets.mnist.load_data()', 'tf1_mnist.keras_load_data()', 1,
         'data', 'same arrays (uint8, file order) from resources/mnist.npz instead of downloading'),
        ('In [38]', '    tf.compat.v1.disable_eager_execution()\n',
         '    tf.compat.v1.disable_eager_execution()\n    tf.set_random_seed(SEED)\n', 1,
         'seed', 'graph-level seed right after the graph reset in train()'),
        ('In [39]', 'epochs=20000', 'epochs=ITERATIONS', 1, 'iterations',
         'stop after ITERATIONS (default 4,001: iterations 0..4,000, so the print at '
         '4,000 happens; the notebook log itself stops at 4,000)'),
    ],
    'aae-semi': [
        ('file', 'import tensorflow as tf\n',
         'import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\ntf.set_random_seed(SEED)\n',
         1, 'tf2-shim+seed', 'TF1 API and graph semantics under TF 2.21; graph-level seed '
         'before read_data_sets (TF1 DataSet then reseeds NumPy with it)'),
        ('file', 'from tensorflow.examples.tutorials.mnist import input_data\n',
         'import tf1_mnist as input_data\n', 1, 'data',
         'TF1 read_data_sets/DataSet semantics on resources/mnist.npz'),
        ('file', 'n_epochs = 1000\n', 'n_epochs = EPOCHS\n', 1, 'iterations',
         'EPOCHS = 1000 (as coded) in the recorded runs; smaller only for smoke tests'),
        ('file', 'saver.save(sess, save_path=saved_model_path, global_step=step)',
         'pass  # harness: no per-epoch checkpoint', 1, 'logging',
         'skip writing a checkpoint after every epoch (disk I/O only; nothing reads it back)'),
    ],
}
PATCHES['aae-basic'] = PATCHES['aae-semi']

SCRIPTS = {'aae-semi': 'semi_supervised_adversarial_autoencoder.py',
           'aae-basic': 'basic_nn_classifier.py'}
RESULT_DIRS = {'aae-semi': 'Results/Semi_Supervised', 'aae-basic': 'Results/Basic_NN_Classifier'}

PRELUDE = """\
# ---- harness prelude (originals/run_original.py) ----
import sys
sys.path.insert(0, {here!r})
import numpy as np
import tf1_mnist
tf1_mnist.NPZ_PATH = {npz!r}
SEED = {seed}
ITERATIONS = {iterations}
EPOCHS = {epochs}
np.random.seed(SEED)
import tensorflow as _tf_threads
_tf_threads.config.threading.set_intra_op_parallelism_threads(1)
_tf_threads.config.threading.set_inter_op_parallelism_threads(1)
{extra}# ---- end of prelude ----
"""

CELL_RE = re.compile(r'^In \[([^\]]*)\]:\s*$')


def _parses(text):
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _is_output(par):
    """A paragraph that parses but is only a printed value or comments."""
    tree = _parses(par)
    if tree is None:
        return False
    if not tree.body:
        return True
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        try:
            ast.literal_eval(tree.body[0].value)
            return True
        except ValueError:
            return False
    return False


def extract_cells(text):
    """[(label, code)] of the notebook text's code cells, in order."""
    blocks, label, lines = [], None, []
    for line in text.splitlines():
        m = CELL_RE.match(line)
        if m:
            if label is not None:
                blocks.append((label, lines))
            label, lines = 'In [%s]' % m.group(1), []
        elif label is not None:
            lines.append(line)
    if label is not None:
        blocks.append((label, lines))
    cells = []
    for label, lines in blocks:
        # split at blank lines
        pars, cur = [], []
        for line in lines:
            if line.strip() == '':
                if cur:
                    pars.append('\n'.join(cur))
                    cur = []
            else:
                cur.append(line)
        if cur:
            pars.append('\n'.join(cur))
        best = 0
        for k in range(1, len(pars) + 1):
            if _parses('\n\n'.join(pars[:k]) + '\n') is not None:
                best = k
        while best > 0 and _is_output(pars[best - 1]):
            best -= 1
        if best:
            cells.append((label, '\n\n'.join(pars[:best]) + '\n'))
    return cells


def apply_patches(units, patches):
    """units: {label: code}; returns the patched dict."""
    units = dict(units)
    for where, old, new, count, _kind, _why in patches:
        found = units[where].count(old)
        if found != count:
            raise SystemExit('patch %r in %s: found %d times, expected %d' % (old, where, found, count))
        units[where] = units[where].replace(old, new)
    return units


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def git_commit(tree):
    for name in ('COMMIT', '.commit'):
        p = os.path.join(tree, name)
        if os.path.exists(p):
            return open(p).read().strip()
    try:
        return subprocess.check_output(['git', '-C', tree, 'rev-parse', 'HEAD'],
                                       stderr=subprocess.DEVNULL).decode().strip()
    except Exception:
        return None


def build_program(args):
    extra = ''
    if args.target == 'nb002':
        extra = 'from tf1_shims import contrib_variance_scaling_initializer\n'
    prelude = PRELUDE.format(here=HERE, npz=os.path.abspath(args.npz), seed=args.seed,
                             iterations=args.iterations, epochs=args.epochs, extra=extra)
    patches = PATCHES[args.target]
    if args.target.startswith('nb'):
        with open(args.source) as f:
            cells = extract_cells(f.read())
        units = apply_patches(dict(cells), patches)
        body = ''.join('\n# ---- %s ----\n%s' % (label, units[label]) for label, _ in cells)
        code_ref = {'file': os.path.basename(args.source), 'sha256': sha256(args.source),
                    'cells': [label for label, _ in cells]}
    else:
        script = os.path.join(args.source, SCRIPTS[args.target])
        with open(script) as f:
            units = apply_patches({'file': f.read()}, patches)
        body = units['file']
        code_ref = {'repo': 'Naresh1318/Adversarial_Autoencoder', 'path': SCRIPTS[args.target],
                    'commit': args.commit or git_commit(args.source), 'sha256': sha256(script)}
    return prelude + body, code_ref, patches


ROW_PARSERS = {
    # (regex, columns)
    'nb002': [(re.compile(r'^\[harness\] epoch (\d+) test_accuracy ([0-9.]+)'), 'epoch_test'),
              (re.compile(r'^Epoch (\d+), Test accuracy: ([0-9.]+)'), 'printed')],
    'nb001': [(re.compile(r'^(\d+) \. Training Acc (\S+)\tTest Acc (\S+)'), 'gan')],
    'aae-semi': [(re.compile(r'^Encoder Classification Accuracy: ([0-9.eE+-]+)'), 'val')],
    'aae-basic': [(re.compile(r'^Classification Accuracy: ([0-9.eE+-]+)'), 'val')],
}
STAGES_002 = ['source04', 'transfer500', 'scratch500']


def parse_log(target, lines):
    rows, stage, last_epoch, printed = [], -1, None, {}
    for line in lines:
        for rx, kind in ROW_PARSERS[target]:
            m = rx.match(line)
            if not m:
                continue
            if kind == 'epoch_test':
                ep = int(m.group(1))
                if ep == 0:
                    stage += 1
                rows.append({'stage': STAGES_002[stage], 'epoch': ep,
                             'test_accuracy': float(m.group(2)), 'printed_3dp': ''})
                last_epoch = ep
            elif kind == 'printed':
                ep = int(m.group(1))
                assert rows and rows[-1]['epoch'] == ep, line
                rows[-1]['printed_3dp'] = m.group(2)
            elif kind == 'gan':
                rows.append({'iteration': int(m.group(1)), 'train_batch_accuracy': float(m.group(2)),
                             'test_accuracy': float(m.group(3))})
            elif kind == 'val':
                rows.append({'epoch': len(rows), 'validation_accuracy': float(m.group(1))})
    return rows


def summarize(target, rows):
    if target == 'nb002':
        out = {}
        for st in STAGES_002:
            r = [x for x in rows if x['stage'] == st]
            if r:
                out[st] = {'final_epoch': r[-1]['epoch'], 'final_test_accuracy': r[-1]['test_accuracy'],
                           'printed_every_10': {str(x['epoch']): x['printed_3dp'] for x in r
                                                if x['printed_3dp']}}
        return out
    if target == 'nb001':
        return {'final_iteration': rows[-1]['iteration'], 'final_test_accuracy': rows[-1]['test_accuracy'],
                'max_test_accuracy': max(x['test_accuracy'] for x in rows)} if rows else {}
    return {'epochs': len(rows), 'final_validation_accuracy': rows[-1]['validation_accuracy'],
            'max_validation_accuracy': max(x['validation_accuracy'] for x in rows)} if rows else {}


def environment():
    import importlib.metadata as md
    cpu = ''
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    vers = {}
    for pkg in ('tensorflow-cpu', 'tf-keras', 'numpy', 'scikit-learn', 'matplotlib'):
        try:
            vers[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {'python': platform.python_version(), 'packages': vers, 'cpu': cpu,
            'threads': 'intra_op=1 inter_op=1, OMP_NUM_THREADS=1', 'os': platform.platform()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('target', choices=sorted(PATCHES))
    ap.add_argument('--source', required=True,
                    help='notebook text file (nb00X) or a work tree of the AAE repository (aae-*)')
    ap.add_argument('--commit', help='commit of the AAE work tree (recorded; default: git rev-parse)')
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--out', required=True, help='folder for logs, curve.csv and result.json')
    ap.add_argument('--workdir', help='where the patched program runs (default: /tmp/originals-work/...)')
    ap.add_argument('--npz', default=os.path.join(REPO, 'resources', 'mnist.npz'))
    ap.add_argument('--iterations', type=int, default=4001, help='nb001: training iterations')
    ap.add_argument('--epochs', type=int, default=1000, help='aae-*: n_epochs')
    ap.add_argument('--dry-run', action='store_true', help='write the patched program, do not run it')
    args = ap.parse_args(argv)

    program, code_ref, patches = build_program(args)
    workdir = args.workdir or os.path.join('/tmp/originals-work', '%s-seed%d' % (args.target, args.seed))
    if os.path.exists(workdir):
        shutil.rmtree(workdir)
    os.makedirs(workdir)
    if args.target in RESULT_DIRS:
        os.makedirs(os.path.join(workdir, RESULT_DIRS[args.target]))
    prog_path = os.path.join(workdir, 'program.py')
    with open(prog_path, 'w') as f:
        f.write(program)
    print('patched program:', prog_path, flush=True)
    if args.dry_run:
        return 0

    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', TF_NUM_INTRAOP_THREADS='1',
               TF_NUM_INTEROP_THREADS='1', TF_USE_LEGACY_KERAS='1', MPLBACKEND='Agg',
               PYTHONHASHSEED='0', TF_CPP_MIN_LOG_LEVEL='1')
    t0 = time.time()
    out_log = os.path.join(args.out, 'stdout.log')
    # stderr (TF warnings quote lines of the original code) stays in the workdir
    err_log = os.path.join(workdir, 'stderr.log')
    with open(out_log, 'w') as fo, open(err_log, 'w') as fe:
        rc = subprocess.call([sys.executable, '-u', prog_path, ], cwd=workdir, env=env,
                             stdout=fo, stderr=fe)
    wall = time.time() - t0
    with open(out_log) as f:
        lines = f.read().splitlines()
    rows = parse_log(args.target, lines)
    if rows:
        with open(os.path.join(args.out, 'curve.csv'), 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    result = {'target': args.target, 'seed': args.seed, 'returncode': rc, 'wall_s': round(wall, 1),
              'code': code_ref, 'npz': os.path.relpath(os.path.abspath(args.npz), REPO),
              'iterations': args.iterations if args.target == 'nb001' else None,
              'epochs': args.epochs if args.target.startswith('aae') else None,
              'changes': [{'where': w, 'kind': k, 'why': why} for w, _o, _n, _c, k, why in patches],
              'environment': environment(), 'summary': summarize(args.target, rows)}
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump(result, f, indent=1)
    if rc != 0:
        with open(err_log) as f:
            result['stderr_tail'] = f.read().splitlines()[-15:]
        with open(os.path.join(args.out, 'result.json'), 'w') as f:
            json.dump(result, f, indent=1)
    for path in (out_log,):  # keep big logs small in git
        if os.path.getsize(path) > 200_000:
            with open(path, 'rb') as src, gzip.open(path + '.gz', 'wb') as dst:
                shutil.copyfileobj(src, dst)
            os.remove(path)
    print(json.dumps(result['summary'], indent=1))
    return rc


if __name__ == '__main__':
    sys.exit(main())
