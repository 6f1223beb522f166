# Cost of the training jobs: their benchmark files joined with the runs' metrics (device).
# Not defined in archive mode, where results/benchmarks.csv comes from the archive.


rule benchmarks:
    input:
        benchmark_pairs(),
    output:
        "results/benchmarks.csv",
    log:
        "logs/benchmarks.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.benchmarks collect --out {output} {input} > {log} 2>&1"
