rule aggregate:
    input:
        runs=ALL_METRICS,
        pretrain=ALL_PRETRAIN,
    output:
        "results/metrics.csv",
    log:
        "logs/aggregate.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.aggregate --out {output} {input.runs} {input.pretrain} > {log} 2>&1"
