#!/usr/bin/env python
"""Write paper/original_code.yaml from the runs under paper/original_code/.

    python originals/collect.py            # any Python with PyYAML

Every number that this session measured is read from a result.json /
curve.csv that originals/run_original.py wrote; the earlier session's numbers
(issue 19) are typed in below with their mean, sd and n only.
"""
import csv
import glob
import json
import os
import statistics

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUNS = os.path.join(REPO, 'paper', 'original_code')
OUT = os.path.join(REPO, 'paper', 'original_code.yaml')

NB002 = '002_0e661fa08b2a740e.txt'
NB001 = '001_c1f65a8d6218390a.txt'
BLOG004 = '004_e9283f98c02d3284.txt'
AAE_REPO = 'Naresh1318/Adversarial_Autoencoder'
ISSUE19 = 'issue 19 (earlier session)'
ISSUE19_ENV = ('measured on this project\'s CPU machines: TensorFlow 2.21 via tf.compat.v1 '
               '+ tf-keras, one thread')

EARLIER = [
    dict(id='002-source04-issue19', claim='source04', seed_doc=NB002, code=NB002,
         split_read='test', epochs_or_steps='25 epochs', n=10, mean=98.67, sd=0.29),
    dict(id='002-transfer500-issue19', claim='transfer500', seed_doc=NB002, code=NB002,
         split_read='test', epochs_or_steps='100 epochs', n=10, mean=83.98, sd=4.58),
    dict(id='002-scratch500-issue19', claim='scratch500', seed_doc=NB002, code=NB002,
         split_read='test', epochs_or_steps='100 epochs', n=10, mean=74.38, sd=2.24),
    dict(id='004-basic-issue19', claim='baseline1000', seed_doc=BLOG004,
         code='%s basic_nn_classifier.py @ e689c0f' % AAE_REPO,
         split_read='validation', epochs_or_steps='1000 epochs', n=3, mean=89.21, sd=0.34,
         note='dropout on as coded (keep_prob 0.25 also at validation)'),
    dict(id='004-basic-nodropout-issue19', claim=None, seed_doc=BLOG004,
         code='%s basic_nn_classifier.py @ e689c0f, dropout off' % AAE_REPO,
         split_read='validation', epochs_or_steps='1000 epochs', n=3, mean=91.72, sd=0.62,
         note='variant, not the code as written: dropout removed'),
]


class _Dumper(yaml.SafeDumper):
    pass


def _list(dumper, data):
    flow = all(isinstance(x, (int, float)) or x is None for x in data)
    return dumper.represent_sequence('tag:yaml.org,2002:seq', data, flow_style=flow)


def _dict(dumper, data):
    flow = all(isinstance(v, (str, int, float)) for v in data.values()) and len(data) <= 12 \
        and all(len(str(k)) < 4 for k in data)
    return dumper.represent_mapping('tag:yaml.org,2002:map', data.items(), flow_style=flow)


_Dumper.add_representer(list, _list)
_Dumper.add_representer(dict, _dict)


def pct(x):
    return round(100.0 * x, 2)


def stats(values):
    mean = round(statistics.mean(values), 2)
    sd = round(statistics.stdev(values), 2) if len(values) > 1 else None
    return mean, sd


def env_string(res):
    e = res['environment']
    p = e['packages']
    return ('tensorflow-cpu %s (tf.compat.v1) + tf-keras %s, numpy %s, python %s, %s, CPU: %s'
            % (p.get('tensorflow-cpu'), p.get('tf-keras'), p.get('numpy'), e['python'],
               e['threads'], e['cpu']))


def load(target):
    out = []
    for path in sorted(glob.glob(os.path.join(RUNS, target, 'seed*', 'result.json')),
                       key=lambda p: int(p.split('seed')[-1].split(os.sep)[0])):
        with open(path) as f:
            res = json.load(f)
        if res['returncode'] == 0 and res['summary']:
            out.append((res, os.path.dirname(path)))
    return out


def changes(res):
    return ['%s [%s]: %s' % (c['where'], c['kind'], c['why']) for c in res['changes']]


def rel(path):
    return os.path.relpath(path, REPO)


def entry(id_, claim, seed_doc, code, res, runs, split, epochs, values, command, extra=None):
    mean, sd = stats(values)
    e = dict(id=id_, claim=claim, seed_doc=seed_doc, code=code, environment=env_string(res),
             command=command, changes=changes(res), split_read=split, epochs_or_steps=epochs,
             n=len(values), seeds=[r['seed'] for r, _ in runs], values=values, mean=mean, sd=sd,
             measured_by='this session',
             curves=[rel(os.path.join(d, 'curve.csv')) for _, d in runs])
    if extra:
        e.update(extra)
    return e


def main():
    ms = []
    runs = load('nb002')
    if runs:
        res0 = runs[0][0]
        cmd = ('originals/run_original.py nb002 --source shared/seeds/%s --seed S '
               '--out paper/original_code/nb002/seedS' % NB002)
        for stage, epochs in (('source04', '25 epochs'), ('transfer500', '100 epochs'),
                              ('scratch500', '100 epochs')):
            vals = [pct(r['summary'][stage]['final_test_accuracy']) for r, _ in runs]
            printed = [r['summary'][stage]['printed_every_10'] for r, _ in runs]
            ms.append(entry('002-' + stage, stage, NB002, '%s (cells %s, sha256 %s)' % (
                NB002, ', '.join(res0['code']['cells']), res0['code']['sha256'][:12]),
                res0, runs, 'test', epochs + ' (value: last epoch)', vals, cmd,
                {'printed_every_10_epochs': printed}))
    runs = load('nb001')
    if runs:
        res0 = runs[0][0]
        cmd = ('originals/run_original.py nb001 --source shared/seeds/%s --seed S --iterations %d '
               '--out paper/original_code/nb001/seedS' % (NB001, res0['iterations']))
        vals = [pct(r['summary']['final_test_accuracy']) for r, _ in runs]
        late = []
        for _, d in runs:
            with open(os.path.join(d, 'curve.csv')) as f:
                rows = [r for r in csv.DictReader(f) if 2000 <= int(r['iteration']) <= 4000]
            late.append(round(statistics.mean(100 * float(r['test_accuracy']) for r in rows), 2))
        ms.append(entry('001-sgan900', 'sgan900', NB001, '%s (cells %s, sha256 %s)' % (
            NB001, ', '.join(res0['code']['cells']), res0['code']['sha256'][:12]),
            res0, runs, 'test', '%d iterations (value: test accuracy printed at iteration %d)' % (
                res0['iterations'], res0['summary']['final_iteration']), vals, cmd,
            {'mean_of_prints_2000_4000_per_seed': late,
             'max_print_per_seed': [pct(r['summary']['max_test_accuracy']) for r, _ in runs]}))
    for target, id_, claim in (('aae-semi', '004-aae1000', 'aae1000'),
                               ('aae-basic', '004-basic', 'baseline1000')):
        runs = load(target)
        if not runs:
            continue
        res0 = runs[0][0]
        c = res0['code']
        cmd = ('originals/run_original.py %s --source /work/orig/aae-%s --commit %s --seed S '
               '--out paper/original_code/%s/seedS' % (target, c['commit'][:7], c['commit'], target))
        vals = [pct(r['summary']['final_validation_accuracy']) for r, _ in runs]
        ms.append(entry(id_, claim, BLOG004, '%s %s @ %s' % (AAE_REPO, c['path'], c['commit']),
                        res0, runs, 'validation', '%d epochs (value: last epoch)' % res0['epochs'],
                        vals, cmd,
                        {'max_epoch_value_per_seed': [pct(r['summary']['max_validation_accuracy'])
                                                      for r, _ in runs]}))
    for e in EARLIER:
        e = dict(e, environment=ISSUE19_ENV, measured_by=ISSUE19, values=None, curves=None,
                 command=None, changes=None)
        ms.append(e)
    with open(OUT, 'w') as f:
        f.write('# Generated by originals/collect.py from paper/original_code/*/seed*/result.json\n'
                '# (this session) and the earlier numbers typed into it (issue 19).\n'
                '# Percent accuracy; sd is the sample standard deviation over seeds.\n')
        yaml.dump({'measurements': ms}, f, Dumper=_Dumper, sort_keys=False, width=100,
                  allow_unicode=True)
    print('wrote', rel(OUT), len(ms), 'entries')


if __name__ == '__main__':
    main()
