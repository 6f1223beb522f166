rule mnist:
    output:
        MNIST,
    params:
        source=config["data"]["source"],
        idx_dir=idx_dir_arg(),
    log:
        "logs/data/mnist.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.data acquire --out {output} --source {params.source} {params.idx_dir} > {log} 2>&1"


rule split:
    input:
        MNIST,
    output:
        "results/splits/{task}/n{labels}/seed{seed}.npz",
    wildcard_constraints:
        task="mnist10|digits04|digits59",
        labels=r"\d+|all",
        seed=r"\d+",
    log:
        "logs/splits/{task}/n{labels}/seed{seed}.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.data split --mnist {input} --out {output} --task {wildcards.task}"
        " --labels {wildcards.labels} --seed {wildcards.seed} > {log} 2>&1"
