# Cost of the training jobs: their benchmark files joined with the runs' metrics (device).
# Not defined in archive mode, where results/benchmarks.csv comes from the archive.


def benchmark_pairs():
    """(metrics.json, benchmark .tsv) of every training and first-stage job, flattened."""
    pairs = [(f"{run_dir(r)}/metrics.json",
              f"benchmarks/train/{r['task']}/{r['method']}/n{r['labels']}/seed{r['seed']}.tsv") for r in RUNS]
    pairs += [(f"results/pretrain/{s}/seed{seed}/metrics.json", f"benchmarks/pretrain/{s}/seed{seed}.tsv")
              for s, seed in pretrain_stages()]
    return [f for pair in pairs for f in pair]


rule benchmarks:
    input:
        benchmark_pairs(),
    output:
        "results/benchmarks.csv",
    log:
        "logs/benchmarks.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.benchmarks collect --out {output} {input} > {log} 2>&1"
