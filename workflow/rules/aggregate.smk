rule aggregate:
    input:
        runs=ALL_METRICS,
        pretrain=ALL_PRETRAIN,
    output:
        "results/metrics.csv",
    params:
        preset=lambda wc: config["preset"],
    log:
        "logs/aggregate.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.aggregate --preset {params.preset} --out {output} {input.runs} {input.pretrain} > {log} 2>&1"
